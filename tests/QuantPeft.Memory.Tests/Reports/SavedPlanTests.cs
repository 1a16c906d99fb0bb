using System.Text.Json.Nodes;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;

namespace QuantPeft.Memory.Tests.Reports;

public sealed class SavedPlanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qpeft-savedplan-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    private static TrainingPlan Plan(Budget budget, Constraints constraints) =>
        Planner.Plan(ModelPresets.Get("tinyllama-1.1b"), new Workload(512, 2), budget, constraints, Objective.Speed, modelName: "tinyllama-1.1b");

    [Fact]
    public void EveryCandidateStrategyOfASearchReadsBackEqual()
    {
        // An open search over adapter and full-parameter methods: every knob value the planner writes appears.
        TrainingPlan plan = Plan(new Budget { Vram = 80L << 30, Ram = 64L << 30 }, new Constraints());
        var json = JsonNode.Parse(PlanJson.Write(plan))!.AsObject();
        var seen = new HashSet<TrainingMethod>();
        for (int i = 0; i < plan.Candidates.Count; i += 7)
        {
            if (!plan.Candidates[i].Fits) continue;
            json["chosen"] = i;
            SavedPlan saved = SavedPlan.Read(Write(json.ToJsonString()));
            Assert.Equal(plan.Candidates[i].Strategy, saved.Strategy);
            Assert.Equal(plan.Candidates[i].Estimate.PeakBytes, saved.PeakBytes);
            seen.Add(saved.Strategy.Method);
        }
        Assert.True(seen.Count >= 8, $"only {seen.Count} methods sampled");
        SavedPlan first = SavedPlan.Read(Write(PlanJson.Write(plan)));
        Assert.Equal("tinyllama-1.1b", first.Model);
        Assert.Equal(1_100_048_384, first.ParameterCount);
        Assert.Equal(new Workload(512, 2), first.Workload);
        Assert.Equal(80L << 30, first.Budget.Vram);
        Assert.Equal(64L << 30, first.Budget.Ram);
        Assert.Equal(768L << 20, first.Budget.Overhead);
        Assert.Equal(Objective.Speed, first.Objective);
    }

    [Fact]
    public void APlanWhereNothingFitsIsRefusedNamingChosen()
    {
        string path = Write(PlanJson.Write(Plan(new Budget { Vram = 2L << 30 }, new Constraints { Method = TrainingMethod.Full })));
        var e = Assert.Throws<PlanningException>(() => SavedPlan.Read(path));
        Assert.Contains("chosen: null", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void AChosenCandidateThatDoesNotFitIsRefusedNamingFits()
    {
        // A hand-edited plan: chosen points at a rejected candidate.
        var json = JsonNode.Parse(PlanJson.Write(Plan(new Budget { Vram = 3L << 30 }, new Constraints { Method = TrainingMethod.Lora, Batch = 1 })))!.AsObject();
        var candidates = json["candidates"]!.AsArray();
        int rejected = candidates.Select((c, i) => (c, i)).First(x => !(bool)x.c!["fits"]!).i;
        json["chosen"] = rejected;
        var e = Assert.Throws<PlanningException>(() => SavedPlan.Read(Write(json.ToJsonString())));
        Assert.Contains($"candidates[{rejected}].fits", e.Message);
    }

    [Theory]
    [InlineData("schema_version", "2", "schema_version: expected 1, found 2")]
    [InlineData("parameter_count", "\"many\"", "parameter_count: expected a non-negative integer")]
    [InlineData("chosen", "99", "chosen: index 99 is past")]
    [InlineData("chosen", "\"first\"", "chosen: expected a candidate index or null")]
    public void MalformedTopLevelFieldsAreNamed(string field, string value, string message)
    {
        var json = JsonNode.Parse(PlanJson.Write(Plan(new Budget(), Constraints.Fixed(Lora()))))!.AsObject();
        json[field] = JsonNode.Parse(value);
        var e = Assert.Throws<PlanningException>(() => SavedPlan.Read(Write(json.ToJsonString())));
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("method", "\"lorax\"", "candidates[0].strategy.method: expected one of")]
    [InlineData("weights", "\"nf5\"", "candidates[0].strategy.weights: expected one of")]
    [InlineData("batch", "-1", "candidates[0].strategy.batch: expected a non-negative integer")]
    [InlineData("checkpointing", "\"yes\"", "candidates[0].strategy.checkpointing: expected true or false")]
    public void MalformedStrategyFieldsAreNamedWithTheirPath(string field, string value, string message)
    {
        var json = JsonNode.Parse(PlanJson.Write(Plan(new Budget(), Constraints.Fixed(Lora()))))!.AsObject();
        json["candidates"]![0]!["strategy"]![field] = JsonNode.Parse(value);
        var e = Assert.Throws<PlanningException>(() => SavedPlan.Read(Write(json.ToJsonString())));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void MissingFieldsAndNonJsonAreNamed()
    {
        var json = JsonNode.Parse(PlanJson.Write(Plan(new Budget(), Constraints.Fixed(Lora()))))!.AsObject();
        json["budget"]!.AsObject().Remove("device_kind");
        Assert.Contains("budget.device_kind: missing", Assert.Throws<PlanningException>(() => SavedPlan.Read(Write(json.ToJsonString()))).Message);
        Assert.Contains("not valid JSON", Assert.Throws<PlanningException>(() => SavedPlan.Read(Write("{\"schema_version\": 1,"))).Message);
    }

    private static Strategy Lora() => new()
    {
        Method = TrainingMethod.Lora, Weights = WeightFormat.Nf4, DoubleQuant = true, Rank = 16, Targets = TargetModules.Q | TargetModules.V,
        Optimizer = OptimizerKind.AdamW8bit, Checkpointing = true, Batch = 2, ChunkedLoss = true,
    };
}
