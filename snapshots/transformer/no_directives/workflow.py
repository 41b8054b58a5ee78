"""A plain module: every mode must return it byte-identical."""
import time

# a comment that mentions "use step" is not a directive
DOC = "use step is a directive"


async def plain(x):
    return time.time() + x


class Thing:
    def method(self):
        return "use workflow is also a directive"
