using System.Text.Json;
using System.Text.RegularExpressions;

namespace QuantPeft.Formats.Peft;

/// <summary>
/// The contents of a PEFT <c>adapter_config.json</c> for LoRA-family adapters, with PEFT's key names
/// and defaults (peft <c>LoraConfig</c>). Keys this type does not model are kept verbatim in
/// <see cref="AdditionalKeys"/> and written back, so a config from a newer PEFT survives a round trip.
/// </summary>
public sealed record PeftAdapterConfig
{
    /// <summary><c>peft_type</c>: <c>"LORA"</c> for LoRA, rsLoRA, DoRA, PiSSA and friends. Required.</summary>
    public required string PeftType { get; init; }

    /// <summary><c>task_type</c>: <c>CAUSAL_LM</c>, <c>SEQ_CLS</c>, <c>SEQ_2_SEQ_LM</c>, <c>TOKEN_CLS</c>, <c>QUESTION_ANS</c>, <c>FEATURE_EXTRACTION</c>, or null.</summary>
    public string? TaskType { get; init; }

    /// <summary><c>base_model_name_or_path</c>: the model the adapter was trained on.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary><c>revision</c> of the base model.</summary>
    public string? Revision { get; init; }

    /// <summary><c>inference_mode</c>: PEFT sets it to true when saving.</summary>
    public bool InferenceMode { get; init; }

    /// <summary><c>r</c>: the default LoRA rank.</summary>
    public int R { get; init; } = 8;

    /// <summary><c>lora_alpha</c>: the default scaling numerator.</summary>
    public double LoraAlpha { get; init; } = 8;

    /// <summary><c>lora_dropout</c>.</summary>
    public double LoraDropout { get; init; }

    /// <summary><c>target_modules</c>: name suffixes, or a regex over full module names; null when unset.</summary>
    public PeftModuleSelector? TargetModules { get; init; }

    /// <summary><c>exclude_modules</c>: same forms as <see cref="TargetModules"/>.</summary>
    public PeftModuleSelector? ExcludeModules { get; init; }

    /// <summary><c>fan_in_fan_out</c>: the base stores weights as (in, out), as GPT-2's Conv1D does.</summary>
    public bool FanInFanOut { get; init; }

    /// <summary><c>bias</c>: <c>"none"</c>, <c>"all"</c> or <c>"lora_only"</c>.</summary>
    public string Bias { get; init; } = "none";

    /// <summary><c>use_rslora</c>: scale by alpha/√r instead of alpha/r.</summary>
    public bool UseRslora { get; init; }

    /// <summary><c>modules_to_save</c>: modules trained in full and saved beside the adapter.</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary><c>init_lora_weights</c>.</summary>
    public PeftInitLoraWeights InitLoraWeights { get; init; } = PeftInitLoraWeights.Default;

    /// <summary><c>layers_to_transform</c>: layer indices (a single int in the file becomes a one-element list).</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary><c>layers_pattern</c>: the layer container's name(s), used with <see cref="LayersToTransform"/>.</summary>
    public PeftModuleSelector? LayersPattern { get; init; }

    /// <summary><c>rank_pattern</c>: regex (matched as a module-name suffix) → rank, overriding <see cref="R"/>; first match wins.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary><c>alpha_pattern</c>: regex → alpha, overriding <see cref="LoraAlpha"/>; first match wins.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary><c>use_dora</c>: weight-decomposed LoRA; the adapter carries <c>lora_magnitude_vector</c>s.</summary>
    public bool UseDora { get; init; }

    /// <summary><c>lora_bias</c>: lora_B carries a bias.</summary>
    public bool LoraBias { get; init; }

    /// <summary><c>peft_version</c> that wrote the file.</summary>
    public string? PeftVersion { get; init; }

    /// <summary>
    /// Every other key of the file, verbatim, in file order: PEFT keys this type does not interpret
    /// (<c>megatron_config</c>, <c>loftq_config</c>, ...) and keys unknown to it. A config built in code
    /// starts with PEFT's defaults for those keys (<see cref="PeftAdapterConfigJson.DefaultAdditionalKeys"/>).
    /// </summary>
    public IReadOnlyDictionary<string, JsonElement> AdditionalKeys { get; init; } = PeftAdapterConfigJson.DefaultAdditionalKeys;

    /// <summary>Keys of the loaded file that PEFT itself does not define (it would drop them with a warning); one line each.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The rank of the module at <paramref name="modulePath"/> (e.g. <c>model.layers.0.self_attn.q_proj</c>).</summary>
    public int RankFor(string modulePath) => Match(RankPattern, modulePath, out int r) ? r : R;

    /// <summary>The alpha of the module at <paramref name="modulePath"/>.</summary>
    public double AlphaFor(string modulePath) => Match(AlphaPattern, modulePath, out double a) ? a : LoraAlpha;

    /// <summary>The factor applied to B·A: alpha/r, or alpha/√r with rsLoRA (PEFT <c>update_layer</c>).</summary>
    public double ScalingFor(string modulePath)
    {
        int r = RankFor(modulePath);
        return UseRslora ? AlphaFor(modulePath) / Math.Sqrt(r) : AlphaFor(modulePath) / r;
    }

    // PEFT's get_pattern_key: the first key whose regex matches a dot-separated suffix of the module name.
    private static bool Match<T>(IReadOnlyDictionary<string, T> patterns, string modulePath, out T value)
    {
        foreach (var (pattern, v) in patterns)
        {
            if (Regex.IsMatch(modulePath, $"^(?:.*\\.)?(?:{pattern})$", RegexOptions.CultureInvariant))
            {
                value = v;
                return true;
            }
        }
        value = default!;
        return false;
    }
}
