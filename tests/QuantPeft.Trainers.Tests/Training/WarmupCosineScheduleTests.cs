using QuantPeft.Formats;
using QuantPeft.Trainers.Training;

namespace QuantPeft.Trainers.Tests.Training;

public class WarmupCosineScheduleTests
{
    // peak 1e-3, 10 warmup steps, 111 total, min ratio 0.1 (min 1e-4); decay denominator 111 - 10 - 1 = 100.
    private static readonly WarmupCosineSchedule S = new(1e-3, 10, 111, 0.1);

    [Theory]
    [InlineData(0, 1e-4)]             // 1e-3 * 1/10
    [InlineData(4, 5e-4)]             // 1e-3 * 5/10
    [InlineData(9, 1e-3)]             // last warmup step reaches the peak
    [InlineData(10, 1e-3)]            // p = 0
    [InlineData(35, 8.681980515e-4)]  // p = 0.25: 1e-4 + 9e-4 * (1 + cos(pi/4)) / 2 = 1e-4 + 9e-4 * 0.8535533906
    [InlineData(60, 5.5e-4)]          // p = 0.5: 1e-4 + 9e-4 / 2
    [InlineData(85, 2.318019485e-4)]  // p = 0.75: 1e-4 + 9e-4 * 0.1464466094
    [InlineData(110, 1e-4)]           // last step: exactly the minimum
    [InlineData(500, 1e-4)]           // past the end
    public void MatchesHandComputedValues(int step, double expected)
    {
        Assert.Equal(expected, S.At(step), 1e-12);
    }

    [Fact]
    public void NoWarmupStartsAtThePeakAndZeroRatioEndsAtZero()
    {
        var s = new WarmupCosineSchedule(2e-4, 0, 3, 0.0);
        Assert.Equal(2e-4, s.At(0), 1e-15);
        Assert.Equal(1e-4, s.At(1), 1e-15); // p = 1/2
        Assert.Equal(0.0, s.At(2), 1e-15);
    }

    [Theory]
    [InlineData(0.0, 0, 10, 0.1, "learning rate")]
    [InlineData(1e-3, -1, 10, 0.1, "warmup")]
    [InlineData(1e-3, 10, 10, 0.1, "total steps (10) must exceed warmup steps (10)")]
    [InlineData(1e-3, 0, 10, 1.5, "ratio")]
    public void RejectsBadOptions(double lr, int warmup, int total, double ratio, string expected)
    {
        var e = Assert.Throws<TrainingOptionsException>(() => new WarmupCosineSchedule(lr, warmup, total, ratio));
        Assert.IsAssignableFrom<QuantPeftException>(e);
        Assert.Contains(expected, e.Message);
    }
}
