using System.Globalization;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// The command-line spelling of every knob value, both ways. Parsing errors are
/// <see cref="PlanningException"/>s naming the flag, the accepted values and what was found.
/// </summary>
public static class Knob
{
    // The method names come from the registry, the one place a method is declared.
    private static readonly (string Name, TrainingMethod Value)[] Methods = [.. MethodRegistry.All.Select(d => (d.Name, d.Method))];

    // The one list of optimizer names: the CLI, saved plans, the planner's labels and OptimizerFactory all read it.
    private static readonly (string Name, OptimizerKind Value)[] Optimizers =
    [
        ("adamw", OptimizerKind.AdamW), ("adamw-8bit", OptimizerKind.AdamW8bit), ("paged-adamw", OptimizerKind.PagedAdamW),
        ("paged-adamw-8bit", OptimizerKind.PagedAdamW8bit), ("galore", OptimizerKind.Galore),
        ("galore-8bit", OptimizerKind.Galore8bit), ("natural-galore", OptimizerKind.NaturalGalore),
    ];

    /// <summary>The command-line names of every <see cref="OptimizerKind"/>, in declaration order.</summary>
    public static IReadOnlyList<string> OptimizerNames { get; } = [.. Optimizers.Select(o => o.Name)];

    /// <summary>Command-line name of a method.</summary>
    public static string Name(TrainingMethod method) => Methods.First(m => m.Value == method).Name;

    /// <summary>Command-line name of an optimizer.</summary>
    public static string Name(OptimizerKind optimizer) => Optimizers.First(o => o.Value == optimizer).Name;

    /// <summary>Command-line name of a weight format (<c>lq-lora:2.75</c> carries its bit width).</summary>
    public static string Name(WeightFormat format, double lqLoraBits = 0) => format switch
    {
        WeightFormat.LqLora => "lq-lora:" + lqLoraBits.ToString("0.###", CultureInfo.InvariantCulture),
        _ => format.ToString().ToLowerInvariant(),
    };

    /// <summary>Parses <c>full|lora|pissa|osora|vera|dora|lisa|galore|natural-galore|loram</c>.</summary>
    public static TrainingMethod ParseMethod(string text, string flag = "--method") => Lookup(Methods, text, flag);

    /// <summary>Parses one of <see cref="OptimizerNames"/> (case and surrounding spaces ignored).</summary>
    public static OptimizerKind ParseOptimizer(string text, string flag = "--optimizer") => Lookup(Optimizers, text, flag);

    /// <summary>Parses <c>bf16|int8|nf4|fp4|lq-lora:BITS</c> into the format and the LQ-LoRA bit width (0 otherwise).</summary>
    public static (WeightFormat Format, double Bits) ParseWeights(string text, string flag = "--weights")
    {
        string t = text.Trim().ToLowerInvariant();
        if (t.StartsWith("lq-lora:", StringComparison.Ordinal))
        {
            string bits = t["lq-lora:".Length..];
            if (!double.TryParse(bits, NumberStyles.Float, CultureInfo.InvariantCulture, out double b) || b < 2 || b > 8)
                throw new PlanningException($"{flag}: expected lq-lora:BITS with BITS between 2 and 8 (e.g. lq-lora:2.75), found '{text}'");
            return (WeightFormat.LqLora, b);
        }
        return t switch
        {
            "bf16" => (WeightFormat.Bf16, 0),
            "int8" => (WeightFormat.Int8, 0),
            "nf4" => (WeightFormat.Nf4, 0),
            "fp4" => (WeightFormat.Fp4, 0),
            _ => throw new PlanningException($"{flag}: expected one of bf16, int8, nf4, fp4, lq-lora:BITS; found '{text}'"),
        };
    }

    /// <summary>Parses <c>all-linear|attn|mlp</c> or a comma list of <c>q,k,v,o,gate,up,down</c> (Phi-3's fused <c>qkv</c> and <c>gate_up</c> stand for their parts).</summary>
    public static TargetModules ParseTargets(string text, string flag = "--targets")
    {
        string t = text.Trim().ToLowerInvariant();
        switch (t)
        {
            case "all-linear": return TargetModules.AllLinear;
            case "attn": return TargetModules.Attn;
            case "mlp": return TargetModules.Mlp;
        }
        var set = TargetModules.None;
        foreach (string part in t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            set |= part switch
            {
                "q" => TargetModules.Q, "k" => TargetModules.K, "v" => TargetModules.V, "o" => TargetModules.O,
                "gate" => TargetModules.Gate, "up" => TargetModules.Up, "down" => TargetModules.Down,
                "qkv" => TargetModules.Q | TargetModules.K | TargetModules.V, "gate_up" => TargetModules.Gate | TargetModules.Up,
                _ => throw new PlanningException($"{flag}: expected all-linear, attn, mlp or a list of q,k,v,o,gate,up,down; found '{part}' in '{text}'"),
            };
        }
        if (set == TargetModules.None)
            throw new PlanningException($"{flag}: expected all-linear, attn, mlp or a list of q,k,v,o,gate,up,down; found '{text}'");
        return set;
    }

    /// <summary>Parses <c>on|off</c> (also true/false, yes/no).</summary>
    public static bool ParseSwitch(string text, string flag) => text.Trim().ToLowerInvariant() switch
    {
        "on" or "true" or "yes" or "1" => true,
        "off" or "false" or "no" or "0" => false,
        _ => throw new PlanningException($"{flag}: expected on or off, found '{text}'"),
    };

    /// <summary>Parses <c>fused|eager</c>.</summary>
    public static AttentionKind ParseAttention(string text, string flag = "--attention") => text.Trim().ToLowerInvariant() switch
    {
        "fused" => AttentionKind.Fused,
        "eager" => AttentionKind.Eager,
        _ => throw new PlanningException($"{flag}: expected fused or eager, found '{text}'"),
    };

    /// <summary>Parses <c>quality|speed|memory</c>.</summary>
    public static Objective ParseObjective(string text, string flag = "--objective") => text.Trim().ToLowerInvariant() switch
    {
        "quality" => Objective.Quality,
        "speed" => Objective.Speed,
        "memory" => Objective.Memory,
        _ => throw new PlanningException($"{flag}: expected quality, speed or memory, found '{text}'"),
    };

    /// <summary>Parses <c>cuda|cpu</c>.</summary>
    public static DeviceKind ParseDeviceKind(string text, string flag = "--device-kind") => text.Trim().ToLowerInvariant() switch
    {
        "cuda" or "gpu" => DeviceKind.Cuda,
        "cpu" => DeviceKind.Cpu,
        _ => throw new PlanningException($"{flag}: expected cuda or cpu, found '{text}'"),
    };

    /// <summary>Parses a positive integer.</summary>
    public static int ParsePositiveInt(string text, string flag)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v <= 0)
            throw new PlanningException($"{flag}: expected a positive integer, found '{text}'");
        return v;
    }

    /// <summary>Parses a pruning ratio strictly between 0 and 1.</summary>
    public static double ParseRatio(string text, string flag = "--prune")
    {
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v <= 0 || v >= 1)
            throw new PlanningException($"{flag}: expected a ratio between 0 and 1 (exclusive), e.g. 0.85; found '{text}'");
        return v;
    }

    private static T Lookup<T>((string Name, T Value)[] table, string text, string flag)
    {
        string t = text.Trim().ToLowerInvariant();
        foreach (var (name, value) in table)
            if (name == t) return value;
        throw new PlanningException($"{flag}: expected one of {string.Join(", ", table.Select(e => e.Name))}; found '{text}'");
    }
}
