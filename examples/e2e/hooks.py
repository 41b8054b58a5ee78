"""Scenarios 8-9: hooks."""

from wfkit import create_hook, create_webhook


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


async def note_token(token: str) -> str:
    "use step"
    return token


async def webhook_with_default_token() -> dict:
    "use workflow"
    webhook = create_webhook()
    seen_by_step = await note_token(webhook.token)
    request = await webhook
    return {"token": webhook.token, "seen_by_step": seen_by_step, "body": request.text()}
