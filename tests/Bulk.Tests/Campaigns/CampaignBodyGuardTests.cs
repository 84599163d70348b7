using System.Text;
using Bulk.Front.Campaigns;
using Bulk.Tests.Infrastructure;

namespace Bulk.Tests.Campaigns;

/// <summary>
/// The guard that refuses a body while it streams in: it counts recipients and sizes values as the serializer
/// would see them, whatever pieces the body arrives in, and never refuses a campaign the validator would accept.
/// </summary>
public sealed class CampaignBodyGuardTests
{
    private const int MaxRecipients = 3;
    private const int MaxTemplateBytes = 2048;

    public static TheoryData<string> Accepted => new()
    {
        """{"from":"a@example.com","subject":"s","text":"t","recipients":["a@example.org","b@example.org","c@example.org"]}""",
        """{"recipients":[{"email":"a@example.org","data":{"list":[1,2,3,4,5],"text":"x, y, z","nested":[{"a":[1,2]}]}},"b@example.org"]}""",
        """{"recipients":["a\"],[\"b@example.org","c,d","e]f"]}""",
        """{"recipients" : [ "a@example.org" , "b@example.org" , "c@example.org" ] , "other":["1","2","3","4","5"]}""",
        """{"recipients":[],"headers":{"X-A":"1","X-B":"2","X-C":"3","X-D":"4"}}""",
        """{"recipients":["a@example.org"],"recipients":["b@example.org","c@example.org","d@example.org"]}""",
        "{\"subject\":\"" + new string('€', 998) + "\"}",
        "{\"text\":\"" + new string('x', MaxTemplateBytes) + "\",\"html\":\"" + new string('é', MaxTemplateBytes / 2) + "\"}",
        "{\"text\":\"" + string.Concat(Enumerable.Repeat("\\u00e9", MaxTemplateBytes / 2)) + "\"}",
        "{\"text\":\"" + string.Concat(Enumerable.Repeat("\\ud83d\\ude00", MaxTemplateBytes / 4)) + "\"}",
        "{\"n\":" + new string('1', MaxTemplateBytes) + "}",
        Headers(CampaignValidator.MaxHeaders),
    };

    public static TheoryData<string, string> Refused => new()
    {
        { """{"recipients":["a@example.org","b@example.org","c@example.org","d@example.org"]}""", "recipients" },
        { """{"recipients":[{"email":"a@example.org"},{},{"data":{"a":[1,2,3]}},42]}""", "recipients" },
        { """{"Recipients":["a","b","c","d"]}""", "recipients" },
        { """{"recip\u0069ents":["a","b","c","d"]}""", "recipients" },
        { "{\"subject\":\"" + new string('x', 2995) + "\"}", "subject" },
        { "{\"SUBJECT\":\"" + new string('€', 999) + "\"}", "subject" },
        { "{\"text\":\"" + new string('x', MaxTemplateBytes + 1) + "\"}", "text" },
        { "{\"html\":\"" + string.Concat(Enumerable.Repeat("\\u00e9", (MaxTemplateBytes / 2) + 1)) + "\"}", "html" },
        { "{\"recipients\":[\"a@example.org\",{\"email\":\"b@example.org\",\"data\":{\"bio\":\"" + new string('x', MaxTemplateBytes + 1) + "\"}}]}", "recipients[1]" },
        { "{\"headers\":{\"X-A\":\"" + new string('x', MaxTemplateBytes + 1) + "\"}}", "headers" },
        { "{\"from\":" + new string('1', MaxTemplateBytes + 1) + "}", "from" },
        { "\"" + new string('x', MaxTemplateBytes + 1) + "\"", "body" },
        { "{\"" + new string('x', MaxTemplateBytes + 1) + "\":1}", "body" },
        { Headers(CampaignValidator.MaxHeaders + 1), "headers" },
    };

    [Theory]
    [MemberData(nameof(Accepted))]
    public void WhatTheValidatorMayAccept_IsLetThrough_InOnePieceOrByteByByte(string json)
    {
        Assert.Null(Refusal(json, byteByByte: false));
        Assert.Null(Refusal(json, byteByByte: true));
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void WhatBreaksALimit_IsRefusedNamingTheField_InOnePieceOrByteByByte(string json, string field)
    {
        Assert.Equal(field, Refusal(json, byteByByte: false)?.Field);
        Assert.Equal(field, Refusal(json, byteByByte: true)?.Field);
    }

    [Fact]
    public void TooManyRecipients_IsRefusedAtTheFirstOneTooMany_NotAtTheEnd()
    {
        var guard = new CampaignBodyGuard(maxRecipients: 100_000, MaxTemplateBytes);
        long seen = 0;
        var refusal = Assert.Throws<CampaignBodyRefusedException>(() =>
        {
            foreach (var piece in OversizedBodies.WithRecipients(1_000_000))
            {
                guard.Observe(piece.Span);
                seen += piece.Length;
            }
        });

        Assert.Equal("At most 100000 recipients per campaign; this one has more.", refusal.Message);
        Assert.InRange(seen, 100_000 * 20, 100_001 * 23);
    }

    [Theory]
    [InlineData("""{"a":1,"b":2,"c":3}""", 3)]
    [InlineData("""{"a":[1,2],"b":{"c":"x,y]}"}}""", 5)]
    [InlineData("""{"a":[],"b":{},"c":"[{,}]"}""", 3)]
    [InlineData("""{ "deep" : [ [ [ 1 ] ] ] }""", 4)]
    public void DataValues_AreCountedAsTheValidatorCountsThem_NestedOnesIncluded(string data, int values)
    {
        var json = $$"""{"recipients":["x@example.org",{"email":"a@example.org","data":{{data}}},{"email":"b@example.org","data":{{data}}}]}""";

        foreach (var byteByByte in new[] { false, true })
        {
            Assert.Null(DataRefusal(json, values, values * 2, byteByByte));
            Assert.Equal("recipients[1].data", DataRefusal(json, values - 1, int.MaxValue, byteByByte)?.Field);
            Assert.Equal("recipients", DataRefusal(json, values, (values * 2) - 1, byteByByte)?.Field);
        }
    }

    [Fact]
    public void ACampaignOfTheMostRecipientsAllowed_IsLetThrough()
    {
        var guard = new CampaignBodyGuard(maxRecipients: 1000, MaxTemplateBytes);

        guard.Observe(Encoding.UTF8.GetBytes(SampleCampaigns.Personal(1000)));
    }

    private static string Headers(int count) =>
        "{\"recipients\":[\"a@example.org\"],\"headers\":{" + string.Join(",", Enumerable.Range(0, count).Select(i => $"\"X-{i}\":\"{{}},[]\"")) + "}}";

    private static CampaignBodyRefusedException? DataRefusal(string json, int perRecipient, int inAll, bool byteByByte) =>
        Refusal(json, byteByByte, new CampaignBodyGuard(MaxRecipients, MaxTemplateBytes, perRecipient, inAll));

    private static CampaignBodyRefusedException? Refusal(string json, bool byteByByte, CampaignBodyGuard? given = null)
    {
        var guard = given ?? new CampaignBodyGuard(MaxRecipients, MaxTemplateBytes);
        var bytes = Encoding.UTF8.GetBytes(json);
        try
        {
            if (byteByByte)
            {
                for (var i = 0; i < bytes.Length; i++)
                {
                    guard.Observe(bytes.AsSpan(i, 1));
                }
            }
            else
            {
                guard.Observe(bytes);
            }

            return null;
        }
        catch (CampaignBodyRefusedException e)
        {
            return e;
        }
    }
}
