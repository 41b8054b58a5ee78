import subprocess as sp
from time import sleep as nap
from urllib.request import urlopen


async def sneaky():
    "use workflow"
    nap(1)
    sp.check_output(["date"])
    return urlopen("https://example.com")


async def fine():
    "use step"
    nap(1)
    return open("/etc/hostname").read()
