using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Trainers.Demo;

namespace QuantPeft.Cli.Tests.Commands;

public class TrainPlanTests
{
    private static string DemoFolder => DemoModel.ShippedFolder() ?? throw new InvalidOperationException("the demo model is not next to the tests");

    // A plan written by hand in the documented schema (docs/planner.md), for the demo model's 886,272 parameters.
    private static JsonObject HandWrittenPlan(bool fits = true, long parameters = 886_272, string model = "demo") => new()
    {
        ["schema_version"] = 1, ["model"] = model, ["parameter_count"] = parameters, ["objective"] = "quality",
        ["workload"] = new JsonObject { ["seq"] = 32, ["grad_accum"] = 2, ["adapter_dropout"] = 0 },
        ["budget"] = new JsonObject { ["vram_bytes"] = null, ["ram_bytes"] = 4L << 30, ["overhead_bytes"] = 256L << 20, ["fragmentation"] = 0.05, ["device_kind"] = "cpu" },
        ["candidate_count"] = 1,
        ["candidates"] = new JsonArray(new JsonObject
        {
            ["strategy"] = new JsonObject
            {
                ["weights"] = "bf16", ["double_quant"] = false, ["method"] = "lora", ["rank"] = 4, ["targets"] = "q,v",
                ["optimizer"] = "adamw-8bit", ["layerwise"] = false, ["checkpointing"] = true, ["lisa_layers"] = 0, ["prune"] = 0,
                ["attention"] = "eager", ["batch"] = 4, ["chunked_loss"] = true, ["summary"] = "hand-written",
            },
            ["fits"] = fits, ["peak_bytes"] = 300L << 20, ["overflows"] = new JsonArray(),
        }),
        ["chosen"] = 0,
    };

    private static string Save(TempFolder tmp, JsonObject plan)
    {
        string path = Path.Combine(tmp.Path, "plan-" + Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, plan.ToJsonString());
        return path;
    }

    [Fact]
    public void HandWrittenPlanRunsTheDemoModelAndTheRunFolderRecordsIt()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", DemoFolder, "--plan", Save(tmp, HandWrittenPlan()), "--steps", "2", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        // The plan decided the adapter: rank 4 on q and v of each of the 4 layers (A: 4x128, B: 128x4 each).
        Assert.Contains($"{4 * 2 * (4 * 128 + 128 * 4):N0}", stdout);
        using var recorded = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        JsonElement root = recorded.RootElement;
        JsonElement s = root.GetProperty("candidates")[0].GetProperty("strategy");
        Assert.Equal(("lora", "bf16", 4, "q,v", "adamw-8bit", true, "eager", 4),
            (s.GetProperty("method").GetString(), s.GetProperty("weights").GetString(), s.GetProperty("rank").GetInt32(), s.GetProperty("targets").GetString(),
             s.GetProperty("optimizer").GetString(), s.GetProperty("checkpointing").GetBoolean(), s.GetProperty("attention").GetString(), s.GetProperty("batch").GetInt32()));
        Assert.Equal(2, root.GetProperty("workload").GetProperty("grad_accum").GetInt32());
        Assert.Equal(4L << 30, root.GetProperty("budget").GetProperty("ram_bytes").GetInt64());
        Assert.Equal(2, root.GetProperty("trainer").GetProperty("steps").GetInt32());
        Assert.Equal(Path.GetFullPath(DemoFolder), root.GetProperty("model").GetString());

        // The run folder's plan is itself a plan: running it again needs no MODEL.
        string again = Path.Combine(tmp.Path, "again");
        (exit, stdout, stderr) = CliHarness.Run("train", "--plan", Path.Combine(run, "plan.json"), "--steps", "1", "-o", again);
        Assert.True(exit == 0, stderr + stdout);
        using var second = JsonDocument.Parse(File.ReadAllText(Path.Combine(again, "plan.json")));
        Assert.Equal(s.GetRawText(), second.RootElement.GetProperty("candidates")[0].GetProperty("strategy").GetRawText());
    }

    [Fact]
    public void BudgetFlagPlansWithTheGivenKnobsFixed()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", "--ram", "4GiB", "--device-kind", "cpu", "--method", "lora", "--weights", "nf4",
            "--optimizer", "adamw", "--rank", "8", "--steps", "1", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        using var recorded = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        JsonElement s = recorded.RootElement.GetProperty("candidates")[0].GetProperty("strategy");
        Assert.Equal(("lora", "nf4", 8, "adamw"), (s.GetProperty("method").GetString(), s.GetProperty("weights").GetString(), s.GetProperty("rank").GetInt32(), s.GetProperty("optimizer").GetString()));
        Assert.Equal(4L << 30, recorded.RootElement.GetProperty("budget").GetProperty("ram_bytes").GetInt64());
        Assert.True(recorded.RootElement.GetProperty("candidates")[0].GetProperty("fits").GetBoolean());
    }

    [Fact]
    public void RefusalsNameTheFieldOrFlag()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        void Refused(string message, params string[] args)
        {
            var (exit, _, stderr) = CliHarness.Run(["train", .. args, "--steps", "1", "-o", run]);
            Assert.True(exit == 1, stderr);
            Assert.Contains(message, stderr);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.False(Directory.Exists(Path.Combine(run, "adapter")));
        }

        Refused("candidates[0].fits: the chosen candidate does not fit", DemoFolder, "--plan", Save(tmp, HandWrittenPlan(fits: false)));
        Refused("parameter_count: the plan is for 'demo' (6,738,415,616 parameters)", DemoFolder, "--plan", Save(tmp, HandWrittenPlan(parameters: 6_738_415_616)));
        // Same parameter count, other architecture: a preset whose shape differs is named by its field.
        var preset = HandWrittenPlan(parameters: 886_272, model: "llama-2-7b");
        Refused("model: the plan is for 'llama-2-7b' (num_hidden_layers 32)", DemoFolder, "--plan", Save(tmp, preset));
        Refused("--method: --plan fixes the strategy", DemoFolder, "--plan", Save(tmp, HandWrittenPlan()), "--method", "lora");
        Refused("--ram: --plan carries its own budget", DemoFolder, "--plan", Save(tmp, HandWrittenPlan()), "--ram", "8GiB");
        Refused("--ram: expected a size", "--ram", "12XB", "--device-kind", "cpu");
        Refused("--ram 100.0 MiB is not above the runtime overhead 256.0 MiB (--overhead)", "--ram", "100MiB", "--device-kind", "cpu");
        Refused("--vram applies to --device-kind cuda", "--vram", "24GiB", "--device-kind", "cpu");
        Refused("--ram: no strategy of the", "--ram", "257MiB", "--device-kind", "cpu", "--method", "lora", "--batch", "8", "--seq", "256");
        Refused("--chunked-loss off: the trainer always computes a chunked loss", "--chunked-loss", "off");
    }

    [Fact]
    public void AStrategyTheTrainerCannotRunYetSurfacesItsRefusal()
    {
        using var tmp = new TempFolder();
        var plan = HandWrittenPlan();
        var strategy = plan["candidates"]![0]!["strategy"]!;
        strategy["weights"] = "int8";
        var (exit, _, stderr) = CliHarness.Run("train", DemoFolder, "--plan", Save(tmp, plan), "--steps", "1", "-o", Path.Combine(tmp.Path, "run"));
        Assert.Equal(1, exit);
        Assert.Contains("not available yet in qpeft train", stderr);
    }
}
