from conftest import MiB, payload, get_bytes, list_uploads


async def test_roundtrip(s3, raw_s3, bucket):
    data = payload(12 * MiB)
    async with s3.open("a/b.bin", "wb") as f:
        await f.write(data)
    assert await get_bytes(raw_s3, bucket, "a/b.bin") == data
    async with s3.open("a/b.bin", "rb") as f:
        assert await f.read() == data
    assert [e.name for e in await s3.list("a/")] == ["a/b.bin"]
    assert await list_uploads(raw_s3, bucket) == []
