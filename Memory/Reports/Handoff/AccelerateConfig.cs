using System.Text;
using System.Text.Json;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports.Handoff;

/// <summary>
/// The two files that reproduce a sharded plan with <c>accelerate launch</c> and a Trainer: accelerate's FSDP config
/// YAML (the keys <c>accelerate config</c> writes, tests/fixtures/engine-schemas/accelerate-config.json) and a JSON of
/// the training arguments, one section per constructor: <c>TrainingArguments</c>, <c>BitsAndBytesConfig</c>,
/// <c>LoraConfig</c> and the model's loading arguments. FSDP1 is written because its backward prefetch
/// (<c>BACKWARD_PRE</c>) and PEFT's wrapping of each adapter matrix as its own unit are what the plan prices.
/// </summary>
public static class AccelerateConfig
{
    /// <summary>The training-arguments file written beside <paramref name="configPath"/>: <c>NAME.training-args.json</c>.</summary>
    public static string TrainingArgumentsPath(string configPath)
    {
        string full = Path.GetFullPath(configPath);
        return Path.Combine(Path.GetDirectoryName(full) ?? ".", Path.GetFileNameWithoutExtension(full) + ".training-args.json");
    }

    /// <summary>accelerate's FSDP config for <paramref name="c"/>.</summary>
    public static string WriteFsdpConfig(ShardedPlan plan, ShardedCandidate c)
    {
        var e = new List<YamlEntry>
        {
            new("compute_environment", "LOCAL_MACHINE"),
            new("debug", false),
            new("distributed_type", "FSDP"),
            new("downcast_bf16", false),
            new("fsdp_config", new List<YamlEntry>
            {
                new("fsdp_version", 1),
                new("fsdp_reshard_after_forward", "FULL_SHARD"),
                new("fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP"),
                new("fsdp_transformer_layer_cls_to_wrap", HandoffRecipe.DecoderLayerClass(plan.Spec)),
                new("fsdp_backward_prefetch", "BACKWARD_PRE"),
                new("fsdp_forward_prefetch", false),
                new("fsdp_offload_params", c.Layout.OffloadParams),
                new("fsdp_state_dict_type", "SHARDED_STATE_DICT"),
                new("fsdp_use_orig_params", false),
                new("fsdp_cpu_ram_efficient_loading", true),
                new("fsdp_sync_module_states", true),
                new("fsdp_activation_checkpointing", false),
            }),
            new("machine_rank", 0),
            new("main_training_function", "main"),
            new("mixed_precision", "bf16"),
            new("num_machines", 1),
            new("num_processes", plan.Gpus),
            new("rdzv_backend", "static"),
            new("same_network", true),
            new("use_cpu", false),
        };
        var header = HandoffRecipe.Header(plan, c, HandoffEngine.Accelerate).ToList();
        header.Add("Training arguments: the .training-args.json beside this file. Run:");
        header.Add("  accelerate launch --config_file {this file} your_train.py");
        return YamlText.Write(e, header);
    }

    /// <summary>The training arguments of <paramref name="c"/> as JSON, one object per constructor.</summary>
    public static string WriteTrainingArguments(ShardedPlan plan, ShardedCandidate c, string baseModel)
    {
        Strategy s = c.Strategy;
        bool fourBit = s.Weights == WeightFormat.Nf4;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model_name_or_path", baseModel);
            w.WriteNumber("max_seq_length", plan.Workload.Seq);
            w.WriteStartObject("model_kwargs");
            w.WriteString("torch_dtype", "bfloat16");
            w.WriteString("attn_implementation", "flash_attention_2");
            w.WriteEndObject();
            w.WriteStartObject("training_arguments");
            w.WriteString("output_dir", $"./outputs/{AxolotlConfig.OutputName(plan.Model)}-{(s.IsAdapterMethod ? (fourBit ? "qlora" : "lora") : "full")}");
            w.WriteNumber("per_device_train_batch_size", s.Batch);
            w.WriteNumber("gradient_accumulation_steps", plan.Workload.GradAccum);
            w.WriteNumber("num_train_epochs", 1.0);
            w.WriteNumber("learning_rate", HandoffRecipe.LearningRate(s, plan.Spec));
            w.WriteString("optim", "adamw_torch");
            w.WriteBoolean("bf16", true);
            w.WriteBoolean("gradient_checkpointing", s.Checkpointing);
            if (s.Checkpointing)
            {
                // Non-reentrant checkpointing is the one FSDP with frozen 4-bit layers supports.
                w.WriteStartObject("gradient_checkpointing_kwargs");
                w.WriteBoolean("use_reentrant", false);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            if (fourBit)
            {
                w.WriteStartObject("bitsandbytes");
                w.WriteBoolean("load_in_4bit", true);
                w.WriteString("bnb_4bit_quant_type", "nf4");
                w.WriteBoolean("bnb_4bit_use_double_quant", s.DoubleQuant);
                w.WriteString("bnb_4bit_compute_dtype", "bfloat16");
                // FSDP flattens only floating-point storage: the packed 4-bit bytes must live in the bf16 the other parameters use.
                w.WriteString("bnb_4bit_quant_storage", "bfloat16");
                w.WriteEndObject();
            }
            if (s.IsAdapterMethod)
            {
                w.WriteStartObject("lora");
                w.WriteNumber("r", s.Rank);
                w.WriteNumber("lora_alpha", HandoffRecipe.LoraAlpha);
                w.WriteNumber("lora_dropout", plan.Workload.AdapterDropout);
                if (s.Targets == TargetModules.AllLinear) w.WriteString("target_modules", "all-linear");
                else
                {
                    w.WriteStartArray("target_modules");
                    foreach (string m in HandoffRecipe.TargetModuleNames(s.Targets)) w.WriteStringValue(m);
                    w.WriteEndArray();
                }
                w.WriteString("bias", "none");
                w.WriteString("task_type", "CAUSAL_LM");
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
