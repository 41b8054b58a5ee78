"""Encryption at rest: a workflow whose every payload carries a recognisable secret.

Its input, step inputs and outputs, hook metadata and payload, a stream chunk and a
caught step error all hold the string passed in, so a test can look for it in the
raw database rows.
"""

from wfkit import FatalError, create_hook, get_writable


async def shout(text: str) -> str:
    "use step"
    return text.upper() + "!"


async def publish(stream, text: str) -> None:
    "use step"
    await stream.write({"chunk": text})
    await stream.write(text.encode("utf-8"))
    await stream.close()


async def refuse(text: str) -> None:
    "use step"
    raise FatalError(f"refused {text}")


async def carry_secret(secret: str, token: str) -> dict:
    "use workflow"
    loud = await shout(secret)
    await publish(get_writable(), secret)
    try:
        await refuse(secret)
    except FatalError as exc:
        refusal = str(exc)
    payload = await create_hook(token=token, metadata={"about": secret})
    return {"loud": loud, "refusal": refusal, "hook": payload}


async def echo_big(blob: str) -> dict:
    "use workflow"
    loud = await shout(blob)
    return {"size": len(loud), "head": loud[:10]}


async def fail_with_secret(secret: str) -> None:
    "use workflow"
    await refuse(secret)
