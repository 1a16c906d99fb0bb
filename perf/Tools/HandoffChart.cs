using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// The per-GPU breakdown chart of a sharded plan: <c>perf handoff-chart PRESET GPUS VRAM RAM OUT_PREFIX [COUNT=8]</c>
/// plans PRESET over GPUS with the per-GPU VRAM and host RAM budgets (as <c>qpeft plan --gpus</c> does) and writes the
/// first COUNT candidates as OUT_PREFIX.svg and .png.
/// </summary>
internal static class HandoffChart
{
    public static int Run(string[] args)
    {
        if (args.Length is < 6 or > 7)
        {
            Console.Error.WriteLine("usage: handoff-chart PRESET GPUS VRAM RAM OUT_PREFIX [COUNT=8]");
            return 1;
        }
        var spec = ModelPresets.Get(args[1]);
        int gpus = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
        var budget = new Budget { Vram = ByteSize.Parse(args[3], "VRAM"), Ram = ByteSize.Parse(args[4], "RAM") };
        int count = args.Length > 6 ? int.Parse(args[6], System.Globalization.CultureInfo.InvariantCulture) : 8;
        ShardedPlan plan = ShardedPlanner.Plan(spec, gpus, new Workload(Math.Min(2048, spec.MaxPositionEmbeddings)), budget, new Constraints(), modelName: args[1]);
        var shown = plan.Candidates.Take(count).ToList();
        string title = $"{args[1]} on {gpus} × {args[3]} (FSDP full shard, seq 2048): predicted per-GPU peak of the top {shown.Count} candidates";
        File.WriteAllText(args[5] + ".svg", PlanChart.Svg(shown, budget.Vram, title));
        File.WriteAllBytes(args[5] + ".png", PlanChart.Png(shown, budget.Vram, title));
        foreach (ShardedCandidate c in shown) Console.WriteLine($"{c.Describe()}: {ByteSize.Format(c.Estimate.PeakBytes)} per GPU, host {ByteSize.Format(c.Estimate.HostBytes)}");
        return 0;
    }
}
