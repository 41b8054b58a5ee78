from dataclasses import dataclass


@dataclass
class Job:
    name: str

    async def run(self):
        "use workflow"
        return self.name
