using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports.Handoff;

/// <summary>
/// The axolotl YAML that reproduces a sharded plan: model, 4-bit loading, the adapter, the optimizer, checkpointing,
/// micro-batch, sequence length and FSDP2 full sharding, every key as axolotl's pydantic schema documents it
/// (tests/fixtures/engine-schemas/axolotl-schema.json). FSDP2 is axolotl's recommended version; its implicit backward
/// prefetch and unsharded root are what the plan prices.
/// </summary>
public static class AxolotlConfig
{
    /// <summary>Renders the config of <paramref name="c"/>.</summary>
    /// <param name="plan">The plan (model, workload, GPUs).</param>
    /// <param name="c">The candidate to reproduce.</param>
    /// <param name="baseModel">The Hub repository or local folder the engine loads.</param>
    public static string Write(ShardedPlan plan, ShardedCandidate c, string baseModel)
    {
        Strategy s = c.Strategy;
        bool fourBit = s.Weights == WeightFormat.Nf4;
        var e = new List<YamlEntry> { new("base_model", baseModel), new("load_in_4bit", fourBit) };
        if (s.IsAdapterMethod)
        {
            e.Add(new("adapter", fourBit ? "qlora" : "lora"));
            e.Add(new("lora_r", s.Rank));
            e.Add(new("lora_alpha", HandoffRecipe.LoraAlpha));
            e.Add(new("lora_dropout", plan.Workload.AdapterDropout));
            if (s.Targets == TargetModules.AllLinear) e.Add(new("lora_target_linear", true));
            else e.Add(new("lora_target_modules", HandoffRecipe.TargetModuleNames(s.Targets)));
        }
        if (fourBit)
            e.Add(new("bnb_config_kwargs", new List<YamlEntry> { new("bnb_4bit_quant_type", "nf4"), new("bnb_4bit_use_double_quant", s.DoubleQuant) }));
        e.Add(new("sequence_len", plan.Workload.Seq));
        e.Add(new("micro_batch_size", s.Batch));
        e.Add(new("gradient_accumulation_steps", plan.Workload.GradAccum));
        e.Add(new("num_epochs", 1.0));
        e.Add(new("optimizer", "adamw_torch"));
        e.Add(new("learning_rate", HandoffRecipe.LearningRate(s, plan.Spec)));
        e.Add(new("bf16", true));
        e.Add(new("attn_implementation", "flash_attention_2"));
        e.Add(new("gradient_checkpointing", s.Checkpointing));
        e.Add(new("fsdp_version", 2));
        e.Add(new("fsdp_config", new List<YamlEntry>
        {
            new("offload_params", c.Layout.OffloadParams),
            new("cpu_ram_efficient_loading", true),
            new("auto_wrap_policy", "TRANSFORMER_BASED_WRAP"),
            new("transformer_layer_cls_to_wrap", HandoffRecipe.DecoderLayerClass(plan.Spec)),
            new("state_dict_type", "FULL_STATE_DICT"),
            new("reshard_after_forward", true),
        }));
        e.Add(new("output_dir", $"./outputs/{OutputName(plan.Model)}-{(s.IsAdapterMethod ? (fourBit ? "qlora" : "lora") : "full")}"));
        var header = HandoffRecipe.Header(plan, c, HandoffEngine.Axolotl).ToList();
        header.Add("Add your training data under `datasets:` (axolotl's dataset formats), then run:");
        header.Add($"  axolotl train {{this file}} --num-processes {plan.Gpus}");
        return YamlText.Write(e, header);
    }

    /// <summary>A folder name for the run derived from the model's name or path.</summary>
    public static string OutputName(string model)
    {
        string name = Path.GetFileName(model.TrimEnd('/', '\\'));
        if (name.Equals("config.json", StringComparison.OrdinalIgnoreCase)) name = Path.GetFileName(Path.GetDirectoryName(model.TrimEnd('/', '\\')) ?? "model");
        var chars = name.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '-' or '_' ? ch : '-').ToArray();
        string cleaned = new string(chars).Trim('-', '.');
        return cleaned.Length == 0 ? "model" : cleaned;
    }
}
