// Main service of the edge runtime, shipped by the soulmatting.selfhosted.supabase role.
//
// Every request to /functions/v1/<name>/... reaches this service as /<name>/...: when VERIFY_JWT is
// "true" it first checks the caller's JWT (HS256 with JWT_SECRET, ES256 with the keys of
// SUPABASE_JWKS), then runs the function in /home/deno/functions/<name> in a user worker. It imports
// nothing from the network, so it works on hosts without internet access.

const FUNCTIONS_DIR = "/home/deno/functions";
const VERIFY_JWT = Deno.env.get("VERIFY_JWT") === "true";
const JWT_SECRET = Deno.env.get("JWT_SECRET") ?? "";
const JWKS = JSON.parse(Deno.env.get("SUPABASE_JWKS") || '{"keys": []}');

function json(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function base64url(text: string): Uint8Array {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function verify(token: string): Promise<boolean> {
  const parts = token.split(".");
  if (parts.length !== 3) return false;
  const header = JSON.parse(new TextDecoder().decode(base64url(parts[0])));
  const payload = JSON.parse(new TextDecoder().decode(base64url(parts[1])));
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  const signature = base64url(parts[2]);
  let valid = false;
  if (header.alg === "HS256") {
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(JWT_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    valid = await crypto.subtle.verify("HMAC", key, signature, signed);
  } else if (header.alg === "ES256") {
    const jwk = JWKS.keys.find((k: { kid?: string; kty?: string }) => k.kty === "EC" && k.kid === header.kid);
    if (!jwk) return false;
    const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    valid = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, signed);
  }
  return valid && (typeof payload.exp !== "number" || payload.exp > Date.now() / 1000);
}

function bearer(req: Request): string | null {
  const authorization = req.headers.get("authorization") ?? "";
  const token = authorization.startsWith("Bearer ") ? authorization.slice(7) : "";
  // An opaque sb_ key in Authorization: the gateway passes its JWT in sb-api-key.
  return token && !token.startsWith("sb_") ? token : req.headers.get("sb-api-key");
}

Deno.serve(async (req: Request) => {
  if (VERIFY_JWT && req.method !== "OPTIONS") {
    const token = bearer(req);
    if (!token) return json(401, { code: "UNAUTHORIZED_NO_AUTH_HEADER", message: "Missing authorization header" });
    try {
      if (!(await verify(token))) return json(401, { code: "UNAUTHORIZED_INVALID_JWT", message: "Invalid JWT" });
    } catch (_error) {
      return json(401, { code: "UNAUTHORIZED_INVALID_JWT_FORMAT", message: "Invalid JWT" });
    }
  }

  const name = new URL(req.url).pathname.split("/")[1];
  if (!name || name === "main" || !/^[A-Za-z0-9_-]+$/.test(name)) {
    return json(400, { code: "BAD_REQUEST", message: "missing or invalid function name" });
  }
  try {
    // @ts-ignore EdgeRuntime is the runtime's global.
    const worker = await EdgeRuntime.userWorkers.create({
      servicePath: `${FUNCTIONS_DIR}/${name}`,
      memoryLimitMb: 150,
      workerTimeoutMs: 60 * 1000,
      noModuleCache: false,
      envVars: Object.entries(Deno.env.toObject()),
      forceCreate: false,
      cpuTimeSoftLimitMs: 10000,
      cpuTimeHardLimitMs: 20000,
    });
    return await worker.fetch(req);
  } catch (error) {
    return json(500, { code: "WORKER_ERROR", message: String(error) });
  }
});
