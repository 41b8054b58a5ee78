"""Scenarios 8-9: hooks."""

from wfkit import create_hook


async def hook_collector(token: str, custom: str = "meta") -> dict:
    "use workflow"
    collected = []
    with create_hook(token=token, metadata={"custom": custom}) as hook:
        async for payload in hook:
            collected.append(payload)
            if payload.get("done"):
                break
    return {"collected": collected, "token": hook.token}


async def wait_once(token: str) -> dict:
    "use workflow"
    payload = await create_hook(token=token)
    return payload
