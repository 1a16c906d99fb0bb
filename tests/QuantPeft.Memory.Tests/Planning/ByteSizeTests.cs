using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Tests.Planning;

public sealed class ByteSizeTests
{
    [Theory]
    [InlineData("24GiB", 24L << 30)]
    [InlineData("24GB", 24_000_000_000L)]
    [InlineData("500MiB", 500L << 20)]
    [InlineData("0", 0L)]
    [InlineData("1.5 GiB", 3L << 29)]
    [InlineData("512", 512L)]
    [InlineData("2tb", 2_000_000_000_000L)]
    public void ParsesSizes(string text, long expected) => Assert.Equal(expected, ByteSize.Parse(text, "--vram"));

    [Theory]
    [InlineData("lots")]
    [InlineData("-1GB")]
    [InlineData("GB")]
    [InlineData("")]
    public void RejectsMalformedSizesNamingTheFlag(string text)
    {
        var e = Assert.Throws<PlanningException>(() => ByteSize.Parse(text, "--ram"));
        Assert.StartsWith("--ram", e.Message);
    }
}
