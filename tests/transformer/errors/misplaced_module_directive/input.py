import os

"use workflow"


async def flow():
    return os.getcwd()
