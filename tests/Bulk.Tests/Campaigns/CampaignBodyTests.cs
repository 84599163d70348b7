using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bulk.Front.Campaigns;
using Microsoft.AspNetCore.Http;

namespace Bulk.Tests.Campaigns;

/// <summary>The body is read as it streams in, and its hash is still the hash of the whole body, as the idempotency keys on the outcomes stream were recorded with.</summary>
public sealed class CampaignBodyTests
{
    private const string Campaign = """{"from":"News <news@example.com>","subject":"Hi","text":"Hello","recipients":["a@example.org"]}""";

    [Theory]
    [InlineData(Campaign)]
    [InlineData(Campaign + "  \r\n\t  ")]
    [InlineData("\n\n" + Campaign + "\n")]
    public async Task TheHash_IsTheSha256OfTheWholeBody_HoweverItArrives(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);

        var whole = await ReadAsync(new MemoryStream(bytes));
        var dribbled = await ReadAsync(new OneByteAtATime(bytes));

        var expected = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Assert.Equal(expected, whole.Hash);
        Assert.Equal(expected, dribbled.Hash);
        Assert.Equal("a@example.org", Assert.Single(dribbled.Request!.Recipients!)!.Email);
    }

    [Theory]
    [InlineData(Campaign + "x")]
    [InlineData(Campaign + Campaign)]
    public async Task AnythingButWhitespaceAfterTheCampaign_IsAJsonError(string text) =>
        await Assert.ThrowsAnyAsync<JsonException>(() => ReadAsync(new OneByteAtATime(Encoding.UTF8.GetBytes(text))));

    private static Task<CampaignBody> ReadAsync(Stream body)
    {
        var http = new DefaultHttpContext();
        http.Request.Body = body;
        return CampaignBody.ReadAsync(http.Request, new Bulk.Front.FrontOptions(), null, CancellationToken.None);
    }

    /// <summary>A body that arrives a byte per read, the worst a network can do.</summary>
    private sealed class OneByteAtATime(byte[] bytes) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);
    }
}
