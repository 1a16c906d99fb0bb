using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Reports;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// The run folder's <c>plan.json</c>: the planner's JSON for the executed plan (one candidate, chosen 0, its model
/// the full path of the model folder), plus a <c>trainer</c> object with the settings the planner does not price.
/// It is itself a valid <c>qpeft train --plan</c> input.
/// </summary>
internal static class RunPlanFile
{
    public const string FileName = "plan.json";

    public static void Write(string runFolder, TrainingPlan plan, FinetuneOptions o)
    {
        var root = JsonNode.Parse(PlanJson.Write(plan))!.AsObject();
        root["trainer"] = new JsonObject
        {
            ["model_folder"] = ModelFolder.Describe(o.ModelFolder), ["data"] = o.DataPath, ["eval"] = o.EvalPath,
            ["targets"] = new JsonArray([.. ModelAdapters.ResolveTargets(o.Targets).Select(t => JsonValue.Create(t))]),
            ["alpha"] = o.Alpha, ["lr"] = o.LearningRate, ["schedule"] = "cosine", ["warmup_ratio"] = o.WarmupRatio,
            ["weight_decay"] = o.WeightDecay, ["max_grad_norm"] = o.MaxGradNorm, ["steps"] = o.Steps, ["seed"] = o.Seed,
            ["eval_every"] = o.EvalEvery, ["lisa_interval"] = o.LisaInterval, ["prune_criterion"] = o.PruneCriterion,
            ["save_every"] = o.SaveEvery, ["resume"] = o.ResumeFrom, ["compute_dtype"] = "bfloat16",
        };
        AtomicFile.WriteAllText(Path.Combine(runFolder, FileName), root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
    }
}
