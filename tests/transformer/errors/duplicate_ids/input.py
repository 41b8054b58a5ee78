import os

if os.environ.get("FAST"):

    async def charge(x):
        "use step"
        return x

else:

    async def charge(x):
        "use step"
        return x * 2
