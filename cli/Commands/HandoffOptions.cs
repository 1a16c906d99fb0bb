using QuantPeft.Memory.Planning;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft plan</c>'s multi-GPU flags, checked together: <c>--gpus N</c> (N ≥ 2 plans FSDP full sharding),
/// <c>--engine axolotl|accelerate</c> with <c>--engine-config FILE</c> (the config to write), <c>--offload-params on|off</c>.
/// </summary>
internal sealed record HandoffOptions(int Gpus, HandoffEngine? Engine, string? EngineConfig, bool? OffloadParams)
{
    /// <summary>The parsed flags, or null for a single-GPU plan (no multi-GPU flag given, or <c>--gpus 1</c> alone).</summary>
    /// <exception cref="PlanningException">A flag that needs another, or a value out of range; the message names the flag.</exception>
    public static HandoffOptions? Parse(string? gpus, string? engine, string? engineConfig, string? offload, string format)
    {
        int n = gpus is null ? 1 : Knob.ParsePositiveInt(gpus, "--gpus");
        if (n == 1)
        {
            if (engine is not null)
                throw new PlanningException($"--engine {engine}: the hand-off to a multi-GPU engine needs --gpus 2 or more{(gpus is null ? "" : $"; found --gpus {gpus}")}");
            if (engineConfig is not null)
                throw new PlanningException("--engine-config: needs --engine axolotl|accelerate and --gpus 2 or more");
            if (offload is not null)
                throw new PlanningException($"--offload-params: applies to --gpus 2 or more (FSDP); found {(gpus is null ? "no --gpus" : $"--gpus {gpus}")}");
            return null;
        }
        HandoffEngine? e = engine is null ? null : HandoffEngines.Parse(engine);
        if (engineConfig is not null && e is null)
            throw new PlanningException("--engine-config: needs --engine axolotl or accelerate");
        if (e is { } en && string.IsNullOrWhiteSpace(engineConfig))
            throw new PlanningException($"--engine {en.Name()}: needs --engine-config FILE to write the config to");
        bool? off = offload is null ? null : Knob.ParseSwitch(offload, "--offload-params");
        if (format == "html")
            throw new PlanningException("--format html: not available with --gpus; use table, md or json");
        return new HandoffOptions(n, e, engineConfig, off);
    }
}
