using System.Net;
using System.Text;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>
/// Producer bodies whose strings are not text (found by fuzzing the event validator: it threw,
/// and the producer got a 500): a body that is not UTF-8, and an escaped lone surrogate.
/// </summary>
public sealed class ProducerTextTests
{
    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(TestGateway gateway, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/projects/shop/events") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var response = await gateway.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("{\"type\":\"agent:e\\x88ror\",\"payload\":{}}")]
    [InlineData("{\"type\":\"build:cancelled\",\"payload\":{\"buildId\":\"b\\xff\",\"cancelledBy\":\"alice\"}}")]
    [InlineData("{\"type\":\"agent:status:update\",\"payload\":{\"agentId\":\"a\",\"agentType\":\"\\x83ui\",\"status\":\"idle\"}}")]
    public async Task A_body_that_is_not_UTF8_is_refused_with_400_naming_it(string escaped)
    {
        await using var gateway = await TestGateway.StartAsync();
        // \xNN in the data above stands for one raw byte
        var bytes = Encoding.Latin1.GetBytes(System.Text.RegularExpressions.Regex.Replace(escaped, @"\\x([0-9a-f]{2})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 16)).ToString()));
        var (status, body) = await PostAsync(gateway, bytes);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("not valid UTF-8", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lone_surrogate_in_a_checked_field_is_a_validation_error_naming_the_field()
    {
        await using var gateway = await TestGateway.StartAsync();
        var (status, body) = await PostAsync(gateway, Encoding.UTF8.GetBytes("{\"type\":\"build:cancelled\",\"payload\":{\"buildId\":\"\\ud800\",\"cancelledBy\":\"alice\"}}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("payload.buildId", body, StringComparison.Ordinal);

        (status, body) = await PostAsync(gateway, Encoding.UTF8.GetBytes("{\"type\":\"\\udc00\",\"payload\":{}}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("\"type\"", body, StringComparison.Ordinal);
    }
}
