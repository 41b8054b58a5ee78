import asyncio
import os
import socket
import subprocess
import threading
import time
import urllib.request

import httpx
import requests


async def everything(path):
    "use workflow"
    data = open(path).read()
    time.sleep(1)
    requests.get("https://example.com")
    await httpx.AsyncClient().get("https://example.com")
    urllib.request.urlopen("https://example.com")
    socket.create_connection(("example.com", 80))
    subprocess.run(["ls"])
    threading.Thread(target=print).start()
    os.system("ls")
    os.popen("ls")
    await asyncio.create_subprocess_exec("ls")
    await asyncio.create_subprocess_shell("ls")
    await asyncio.to_thread(print)
    name = input("name? ")
    return data, name
