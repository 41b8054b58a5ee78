import time


def not_async():
    "use step"


async def typo():
    "use workflo"


async def flow():
    "use workflow"
    time.sleep(1)
    x = 1
    "use step"
    yield x


class Plain:
    async def method(self):
        "use step"
