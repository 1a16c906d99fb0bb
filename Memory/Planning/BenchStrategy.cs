using System.Globalization;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// A strategy as <c>qpeft bench-memory --strategies</c> spells it: a named shorthand (<c>qlora</c>,
/// <c>galore8-layerwise</c>, …) or a knob string that starts with <c>method=</c>
/// (<c>method=lora,weights=nf4,dq=on,ckpt=on</c>). Knobs a spelling leaves out take the documented bench
/// defaults, so every spelling fixes every knob and prices as exactly one candidate.
/// </summary>
/// <param name="Name">The spelling as given.</param>
/// <param name="Constraints">Every knob fixed except the micro-batch, which the bench's <c>--batch</c> sets.</param>
public sealed record BenchStrategy(string Name, Constraints Constraints)
{
    /// <summary>The named shorthands and the knob string each stands for.</summary>
    public static IReadOnlyList<(string Name, string Knobs)> Shorthands { get; } =
    [
        ("lora-bf16", "method=lora,weights=bf16"),
        ("lora-bf16-ckpt", "method=lora,weights=bf16,ckpt=on"),
        ("qlora", "method=lora,weights=nf4,dq=on"),
        ("qlora-ckpt", "method=lora,weights=nf4,dq=on,ckpt=on"),
        ("qlora-8bit", "method=lora,weights=nf4,dq=on,optimizer=adamw-8bit"),
        ("dora-bf16", "method=dora,weights=bf16"),
        ("qdora", "method=dora,weights=nf4,dq=on"),
        ("pissa", "method=pissa,weights=bf16"),
        ("osora", "method=osora,weights=bf16"),
        ("vera", "method=vera,weights=bf16,rank=256"),
        ("full", "method=full,weights=bf16"),
        ("full-8bit-layerwise", "method=full,weights=bf16,optimizer=adamw-8bit,layerwise=on"),
        ("galore", "method=galore,weights=bf16,optimizer=galore,rank=128"),
        ("galore8-layerwise", "method=galore,weights=bf16,optimizer=galore-8bit,rank=128,layerwise=on"),
        ("lisa", "method=lisa,weights=bf16,lisa=2"),
        ("loram", "method=loram,weights=bf16,prune=0.85"),
        ("qloram", "method=loram,weights=nf4,dq=on,prune=0.85"),
    ];

    /// <summary>
    /// Parses a <c>--strategies</c> value: strategies separated by commas, where a knob string runs from its
    /// <c>method=</c> up to the next shorthand or <c>method=</c>. Inside a knob string, a target list joins
    /// projections with <c>+</c> (<c>targets=q+v</c>).
    /// </summary>
    /// <exception cref="PlanningException">An unknown shorthand, a knob string without <c>method=</c>, an unknown knob or value, or the same strategy twice (message names <c>--strategies</c>).</exception>
    public static IReadOnlyList<BenchStrategy> ParseList(string text, string flag = "--strategies")
    {
        var groups = new List<List<string>>();
        foreach (string token in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            bool continues = token.Contains('=') && !token.StartsWith("method=", StringComparison.OrdinalIgnoreCase);
            if (continues && (groups.Count == 0 || !groups[^1][0].Contains('=')))
                throw new PlanningException($"{flag}: '{token}' is a knob outside a knob string; a knob string starts with method= (e.g. method=lora,weights=nf4,ckpt=on)");
            if (continues) groups[^1].Add(token);
            else groups.Add([token]);
        }
        if (groups.Count == 0) throw new PlanningException($"{flag}: expected at least one strategy (e.g. lora-bf16,qlora,qlora-ckpt)");
        var result = groups.Select(g => Parse(string.Join(",", g), flag)).ToList();
        var duplicate = result.GroupBy(s => s.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new PlanningException($"{flag}: '{duplicate.Key}' is listed twice");
        return result;
    }

    /// <summary>Parses one shorthand or knob string.</summary>
    /// <exception cref="PlanningException">Unknown shorthand, knob or value.</exception>
    public static BenchStrategy Parse(string text, string flag = "--strategies")
    {
        string name = text.Trim();
        string knobs = name;
        if (!name.Contains('='))
        {
            var hit = Shorthands.FirstOrDefault(s => s.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
            knobs = hit.Knobs ?? throw new PlanningException(
                $"{flag}: unknown strategy '{name}'; expected one of {string.Join(", ", Shorthands.Select(s => s.Name))} or a knob string such as method=lora,weights=nf4,dq=on,ckpt=on");
        }
        return new BenchStrategy(name, ParseKnobs(knobs, $"{flag} '{name}'"));
    }

    private static Constraints ParseKnobs(string knobs, string where)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string pair in knobs.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new PlanningException($"{where}: expected knob=value, found '{pair}'");
            string key = Canonical(pair[..eq].Trim(), where);
            if (!values.TryAdd(key, pair[(eq + 1)..].Trim())) throw new PlanningException($"{where}: {key} is given twice");
        }
        if (!values.TryGetValue("method", out string? methodText)) throw new PlanningException($"{where}: a knob string needs method=");
        TrainingMethod method = Knob.ParseMethod(methodText, $"{where}: method");
        string V(string key, string fallback) => values.TryGetValue(key, out string? v) ? v : fallback;
        var (weights, bits) = Knob.ParseWeights(V("weights", "bf16"), $"{where}: weights");
        bool fourBit = weights is WeightFormat.Nf4 or WeightFormat.Fp4;
        var descriptor = MethodRegistry.Of(method);
        bool adapters = descriptor.IsAdapter;
        bool ranked = descriptor.SearchRanks is not [0];
        string defaultOptimizer = Knob.Name(descriptor.ImpliedOptimizer);
        string defaultRank = descriptor.BenchRank.ToString(CultureInfo.InvariantCulture);
        return new Constraints
        {
            Method = method,
            Weights = weights,
            LqLoraBits = weights == WeightFormat.LqLora ? bits : null,
            DoubleQuant = Knob.ParseSwitch(V("dq", fourBit ? "on" : "off"), $"{where}: dq"),
            Rank = ranked ? Knob.ParsePositiveInt(V("rank", defaultRank), $"{where}: rank") : Unused(values, "rank", where, method),
            Targets = adapters ? Knob.ParseTargets(V("targets", "all-linear").Replace('+', ','), $"{where}: targets") : UnusedTargets(values, where, method),
            Optimizer = Knob.ParseOptimizer(V("optimizer", defaultOptimizer), $"{where}: optimizer"),
            Layerwise = Knob.ParseSwitch(V("layerwise", "off"), $"{where}: layerwise"),
            Checkpointing = Knob.ParseSwitch(V("ckpt", "off"), $"{where}: ckpt"),
            LisaLayers = method == TrainingMethod.Lisa ? Knob.ParsePositiveInt(V("lisa", "2"), $"{where}: lisa") : Unused(values, "lisa", where, method),
            Prune = method == TrainingMethod.Loram ? Knob.ParseRatio(V("prune", "0.85"), $"{where}: prune") : UnusedRatio(values, where, method),
            Attention = Knob.ParseAttention(V("attention", "fused"), $"{where}: attention"),
            ChunkedLoss = true,
        };
    }

    private static readonly (string Canonical, string[] Aliases)[] Keys =
    [
        ("method", []), ("weights", []), ("dq", ["double-quant"]), ("rank", ["r"]), ("targets", []), ("optimizer", ["opt"]),
        ("layerwise", []), ("ckpt", ["checkpointing"]), ("lisa", ["lisa-layers"]), ("prune", []), ("attention", []),
    ];

    private static string Canonical(string key, string where)
    {
        foreach (var (canonical, aliases) in Keys)
            if (key.Equals(canonical, StringComparison.OrdinalIgnoreCase) || aliases.Any(a => a.Equals(key, StringComparison.OrdinalIgnoreCase)))
                return canonical;
        throw new PlanningException($"{where}: unknown knob '{key}'; expected {string.Join(", ", Keys.Select(k => k.Canonical))}");
    }

    private static int? Unused(Dictionary<string, string> values, string key, string where, TrainingMethod method) =>
        values.ContainsKey(key) ? throw new PlanningException($"{where}: {key} does not apply to method={Knob.Name(method)}") : null;

    private static TargetModules? UnusedTargets(Dictionary<string, string> values, string where, TrainingMethod method) =>
        values.ContainsKey("targets") ? throw new PlanningException($"{where}: targets does not apply to method={Knob.Name(method)}") : null;

    private static double? UnusedRatio(Dictionary<string, string> values, string where, TrainingMethod method) =>
        values.ContainsKey("prune")
            ? throw new PlanningException($"{where}: prune {values["prune"].ToString(CultureInfo.InvariantCulture)} does not apply to method={Knob.Name(method)}")
            : null;
}
