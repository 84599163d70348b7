using System.Net.Http.Json;
using System.Text.Json;
using Bulk.Contracts.Outcomes;

namespace Bulk.Tests.Infrastructure;

/// <summary>Reading a campaign's status from a Front, and waiting for it: shared by the tests and <c>./bulk bench</c>.</summary>
public static class CampaignPolling
{
    public static async Task<CampaignStatus> StatusAsync(HttpClient front, string id) =>
        (await front.GetFromJsonAsync<CampaignStatus>($"/campaigns/{id}", JsonSerializerOptions.Web))!;

    /// <summary>Polls the campaign's status every 100 ms until <paramref name="done"/> holds, or fails after <paramref name="timeout"/>.</summary>
    public static async Task<CampaignStatus> WaitForStatusAsync(HttpClient front, string id, Func<CampaignStatus, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await StatusAsync(front, id);
            if (done(status))
            {
                return status;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"campaign {id} still {status} after {timeout}");
            }

            await Task.Delay(100);
        }
    }
}
