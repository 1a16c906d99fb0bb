using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// Holds <c>qpeft train</c> to its memory budget while it runs. Every run is measured (the whole process on a CPU,
/// the device on CUDA) so that its report can put the measured peak beside the plan's; a run with a budget
/// (<c>--ram</c> on a CPU, <c>--vram</c> on CUDA) is checked after setup, after every step, after each evaluation
/// and after the save. Once the measured peak has passed the budget the run writes a resumable checkpoint and
/// stops with one line: what was planned, what was measured, in which phase.
/// </summary>
internal sealed class RunBudget : IDisposable
{
    /// <summary>
    /// Environment variable that sets the limit the run enforces, in place of the plan's budget (a size such as
    /// <c>1500MiB</c>): to keep headroom under a budget the plan was made for, and to test the guard itself.
    /// </summary>
    public const string LimitVariable = "QPEFT_RUN_MEMORY_LIMIT";

    private readonly BudgetGuard? _guard;
    private readonly string _runFolder;

    private RunBudget(BudgetGuard? guard, long? planned, long? limit, string runFolder)
    {
        _guard = guard;
        PlannedBytes = planned;
        LimitBytes = limit;
        _runFolder = runFolder;
    }

    /// <summary>The plan's predicted peak, or null.</summary>
    public long? PlannedBytes { get; }

    /// <summary>The limit enforced, or null when the run has no budget.</summary>
    public long? LimitBytes { get; }

    /// <summary>The measured peak so far (null where the device cannot be read).</summary>
    public long? MeasuredBytes => _guard?.PeakBytes;

    /// <summary>Starts measuring the run of <paramref name="plan"/>.</summary>
    /// <exception cref="QuantPeftException">The limit variable is set to something that is not a size.</exception>
    public static RunBudget Start(TrainingPlan plan, string runFolder)
    {
        long? planned = plan.ChosenCandidate?.Estimate.PeakBytes;
        long? limit = plan.Budget.DeviceLimit;
        if (Environment.GetEnvironmentVariable(LimitVariable) is { Length: > 0 } text)
        {
            try { limit = ByteSize.Parse(text, LimitVariable); }
            catch (PlanningException e) { throw new QuantPeftException(e.Message); }
        }
        BudgetGuard? guard = null;
        try { guard = new BudgetGuard(limit ?? long.MaxValue, planned, plan.Budget.DeviceKind); }
        catch (Exception e) when (limit is null && e is InvalidOperationException or PlatformNotSupportedException)
        {
            // Without a budget the measurement is for the report only; a device that cannot be read leaves it out.
        }
        return new RunBudget(guard, planned, limit, runFolder);
    }

    /// <summary>
    /// Called between phases: when the measured peak has passed the budget, saves a resumable checkpoint of
    /// <paramref name="recipe"/> and stops the run; otherwise names the phase that starts now.
    /// </summary>
    /// <exception cref="QuantPeftException">The budget was exceeded (the checkpoint is written first).</exception>
    public void Between(FinetuneRecipe recipe, string nextPhase)
    {
        if (_guard is null) return;
        if (_guard.Overrun is { } overrun)
        {
            string checkpoint = recipe.SaveCheckpoint(_runFolder);
            throw new QuantPeftException($"{overrun.Describe()}; stopped after step {TrainingCheckpoint.ReadState(checkpoint).Step}, resumable checkpoint {checkpoint}");
        }
        _guard.Enter(nextPhase);
    }

    /// <summary>The report.md line: predicted against measured peak (and the budget when there is one).</summary>
    public string ReportLine()
    {
        string predicted = PlannedBytes is long p ? ByteSize.Format(p) : "n/a";
        string measured = MeasuredBytes is long m ? ByteSize.Format(m) : "not measured";
        string error = PlannedBytes is long pp && MeasuredBytes is long mm && mm > 0 ? $" ({(pp - mm) * 100.0 / mm:+0.0;-0.0} %)" : "";
        string budget = LimitBytes is long l ? $"; budget {ByteSize.Format(l)}" : "";
        return $"- peak memory: predicted {predicted}, measured {measured}{error}{budget}";
    }

    /// <inheritdoc />
    public void Dispose() => _guard?.Dispose();
}
