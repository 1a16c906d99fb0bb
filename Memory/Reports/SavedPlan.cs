using System.Globalization;
using System.Text.Json;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// The executable part of a plan written by <see cref="PlanJson"/>: the model it was made for, the workload,
/// the budget, and the chosen candidate's strategy with its prediction. Read back by <c>qpeft train --plan</c>.
/// </summary>
/// <param name="Model">The plan's <c>model</c> (a preset name, a path, or a synthetic reference).</param>
/// <param name="ParameterCount">The plan's <c>parameter_count</c>.</param>
/// <param name="Workload">The plan's <c>workload</c>.</param>
/// <param name="Budget">The plan's <c>budget</c> (the overhead as planned, explicit).</param>
/// <param name="Objective">The plan's <c>objective</c>.</param>
/// <param name="Strategy">The chosen candidate's <c>strategy</c>.</param>
/// <param name="PeakBytes">The chosen candidate's predicted <c>peak_bytes</c>.</param>
public sealed record SavedPlan(string Model, long ParameterCount, Workload Workload, Budget Budget, Objective Objective,
    Strategy Strategy, long PeakBytes)
{
    /// <summary>
    /// Reads <paramref name="path"/> and returns its chosen candidate. A plan with no chosen candidate, or whose
    /// chosen candidate does not fit its budget, is refused.
    /// </summary>
    /// <exception cref="PlanningException">The file is not a plan (message names the file and the JSON field), or its chosen candidate does not fit.</exception>
    public static SavedPlan Read(string path)
    {
        string text = File.ReadAllText(path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new PlanningException($"{path}: not valid JSON ({e.Message})");
        }
        using (doc)
            return Parse(doc.RootElement, path);
    }

    private static SavedPlan Parse(JsonElement root, string path)
    {
        var r = new Fields(path);
        if (root.ValueKind != JsonValueKind.Object) throw new PlanningException($"{path}: expected a JSON object (a plan from qpeft plan --format json)");
        long version = r.Long(root, "schema_version");
        if (version != PlanJson.SchemaVersion)
            throw new PlanningException($"{path}: schema_version: expected {PlanJson.SchemaVersion}, found {version}");
        string model = r.String(root, "model");
        long parameters = r.Long(root, "parameter_count");
        Objective objective = Knob.ParseObjective(r.String(root, "objective"), $"{path}: objective");
        JsonElement work = r.Object(root, "workload");
        var workload = new Workload((int)r.Long(work, "seq", "workload."), (int)r.Long(work, "grad_accum", "workload."),
            r.Double(work, "adapter_dropout", "workload."))
        {
            RowsPerExample = work.TryGetProperty("rows_per_example", out JsonElement rows) && rows.TryGetInt32(out int n) && n >= 1 ? n : 1,
            ReferenceForward = work.TryGetProperty("reference_forward", out JsonElement rf) && rf.ValueKind == JsonValueKind.True,
            PackedRows = work.TryGetProperty("packed_rows", out JsonElement pr) && pr.ValueKind == JsonValueKind.True,
        };
        JsonElement b = r.Object(root, "budget");
        var budget = new Budget
        {
            Vram = r.NullableLong(b, "vram_bytes", "budget."),
            Ram = r.NullableLong(b, "ram_bytes", "budget."),
            Overhead = r.Long(b, "overhead_bytes", "budget."),
            Fragmentation = r.Double(b, "fragmentation", "budget."),
            DeviceKind = Knob.ParseDeviceKind(r.String(b, "device_kind", "budget."), $"{path}: budget.device_kind"),
        };
        if (!root.TryGetProperty("chosen", out JsonElement chosenElement))
            throw new PlanningException($"{path}: chosen: missing");
        if (chosenElement.ValueKind == JsonValueKind.Null)
            throw new PlanningException($"{path}: chosen: null — no candidate of this plan fits its budget; re-plan with a larger budget or other knobs");
        if (chosenElement.ValueKind != JsonValueKind.Number || !chosenElement.TryGetInt32(out int chosen) || chosen < 0)
            throw new PlanningException($"{path}: chosen: expected a candidate index or null, found {chosenElement.GetRawText()}");
        JsonElement candidates = root.TryGetProperty("candidates", out var c) && c.ValueKind == JsonValueKind.Array
            ? c : throw new PlanningException($"{path}: candidates: expected an array");
        if (chosen >= candidates.GetArrayLength())
            throw new PlanningException($"{path}: chosen: index {chosen} is past the {candidates.GetArrayLength()} candidates written");
        JsonElement candidate = candidates[chosen];
        string at = $"candidates[{chosen}].";
        long peak = r.Long(candidate, "peak_bytes", at);
        if (!r.Bool(candidate, "fits", at))
            throw new PlanningException($"{path}: {at}fits: the chosen candidate does not fit its budget (peak {ByteSize.Format(peak)}); re-plan");
        Strategy strategy = ParseStrategy(r, r.Object(candidate, "strategy", at), at + "strategy.");
        return new SavedPlan(model, parameters, workload, budget, objective, strategy, peak);
    }

    private static Strategy ParseStrategy(Fields r, JsonElement s, string at)
    {
        string Flag(string name) => $"{r.Path}: {at}{name}";
        var (weights, bits) = Knob.ParseWeights(r.String(s, "weights", at), Flag("weights"));
        TrainingMethod method = Knob.ParseMethod(r.String(s, "method", at), Flag("method"));
        string? targets = s.TryGetProperty("targets", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return new Strategy
        {
            Weights = weights,
            LqLoraBits = bits,
            DoubleQuant = r.Bool(s, "double_quant", at),
            Method = method,
            Rank = (int)r.Long(s, "rank", at),
            Targets = targets is null ? TargetModules.None : Knob.ParseTargets(targets, Flag("targets")),
            Optimizer = Knob.ParseOptimizer(r.String(s, "optimizer", at), Flag("optimizer")),
            Layerwise = r.Bool(s, "layerwise", at),
            Checkpointing = r.Bool(s, "checkpointing", at),
            LisaLayers = (int)r.Long(s, "lisa_layers", at),
            Prune = r.Double(s, "prune", at),
            Attention = Knob.ParseAttention(r.String(s, "attention", at), Flag("attention")),
            Batch = (int)r.Long(s, "batch", at),
            ChunkedLoss = r.Bool(s, "chunked_loss", at),
        };
    }

    // Typed field access whose errors name the file and the JSON path.
    private sealed class Fields(string path)
    {
        public string Path { get; } = path;

        public JsonElement Get(JsonElement e, string name, string at)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out JsonElement v))
                throw new PlanningException($"{Path}: {at}{name}: missing");
            return v;
        }

        public JsonElement Object(JsonElement e, string name, string at = "")
        {
            JsonElement v = Get(e, name, at);
            return v.ValueKind == JsonValueKind.Object ? v : throw Wrong(at + name, "an object", v);
        }

        public string String(JsonElement e, string name, string at = "")
        {
            JsonElement v = Get(e, name, at);
            return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Wrong(at + name, "a string", v);
        }

        public long Long(JsonElement e, string name, string at = "")
        {
            JsonElement v = Get(e, name, at);
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) && x >= 0 ? x : throw Wrong(at + name, "a non-negative integer", v);
        }

        public long? NullableLong(JsonElement e, string name, string at = "") =>
            Get(e, name, at).ValueKind == JsonValueKind.Null ? null : Long(e, name, at);

        public double Double(JsonElement e, string name, string at = "")
        {
            JsonElement v = Get(e, name, at);
            return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double x) && x >= 0 && double.IsFinite(x) ? x : throw Wrong(at + name, "a non-negative number", v);
        }

        public bool Bool(JsonElement e, string name, string at = "")
        {
            JsonElement v = Get(e, name, at);
            return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(at + name, "true or false", v);
        }

        private PlanningException Wrong(string field, string expected, JsonElement found) =>
            new($"{Path}: {field}: expected {expected}, found {Shorten(found.GetRawText())}");

        private static string Shorten(string raw) => raw.Length <= 40 ? raw : raw[..40].ToString(CultureInfo.InvariantCulture) + "…";
    }
}
