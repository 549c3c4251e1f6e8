// An example function, deployed by the soulmatting.selfhosted.supabase role:
// GET /functions/v1/hello?name=you answers {"message": "Hello you!"}.
Deno.serve((req: Request) => {
  const name = new URL(req.url).searchParams.get("name") ?? "world";
  return new Response(JSON.stringify({ message: `Hello ${name}!` }), { headers: { "Content-Type": "application/json" } });
});
