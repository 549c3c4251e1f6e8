"""Offline stand-in for the get-pip.py script that ansible-test downloads.

It bootstraps pip from the interpreter's bundled wheel (ensurepip), then installs whatever
ansible-test asked for from the package index pip is configured to use.
"""

import ensurepip
import os
import subprocess
import sys


def main():
    ensurepip.bootstrap(upgrade=True)
    # ensurepip sets PIP_CONFIG_FILE to os.devnull, which hides the machine's pip settings.
    os.environ.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
