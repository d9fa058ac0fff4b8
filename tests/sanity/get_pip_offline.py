"""Stands in for pip's get-pip.py bootstrap script when its host is unreachable.

ansible-test sanity makes a virtualenv per test and bootstraps pip in it by
running get-pip.py with pip's install arguments. This does the same from the
interpreter's own bundled pip (ensurepip), then runs that pip install, which
fetches the exact pip version ansible-test asks for from the package index.
"""
import ensurepip
import subprocess
import sys

# Options only get-pip.py knows: they ask it not to add these packages.
SKIP_OPTIONS = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}

args = [arg for arg in sys.argv[1:] if arg not in SKIP_OPTIONS]
unwanted = [SKIP_OPTIONS[arg] for arg in sys.argv[1:] if arg in SKIP_OPTIONS]
ensurepip.bootstrap(upgrade=False)
status = subprocess.call([sys.executable, "-m", "pip", "install"] + args)
if status == 0 and unwanted:
    status = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet"] + unwanted)
sys.exit(status)
