using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Memory.Tests.Probes;

public class BudgetGuardTests
{
    [Fact]
    public void AnOverrunNamesThePhaseItStartedInAndKeepsThePeak()
    {
        long memory = 100;
        using var guard = new BudgetGuard(limitBytes: 1000, plannedBytes: 900, DeviceKind.Cpu, read: () => Interlocked.Read(ref memory));
        Assert.Null(guard.Overrun);
        guard.Enter("step 1");
        Interlocked.Exchange(ref memory, 1000);             // at the limit is within it
        Assert.Null(guard.Overrun);
        guard.Enter("step 2");
        Interlocked.Exchange(ref memory, 1500);
        var overrun = guard.Overrun;
        Assert.NotNull(overrun);
        Assert.Equal("step 2", overrun!.Phase);
        Assert.Equal(1500, overrun.MeasuredBytes);
        Assert.Equal(900, overrun.PlannedBytes);
        // Memory falls back and the run moves on: the overrun stays, with its phase and the peak.
        Interlocked.Exchange(ref memory, 200);
        guard.Enter("eval after");
        Assert.Equal("step 2", guard.Overrun!.Phase);
        Assert.Equal(1500, guard.PeakBytes);
        Assert.Equal("memory budget exceeded in step 2: measured 1.5 KiB against the budget of 1000 B (planned peak 900 B)", guard.Overrun.Describe());
    }
}
