using QuantPeft.Formats.Peft;

namespace QuantPeft.Formats.Tests.Peft;

public sealed class PeftAdapterConfigTests
{
    // As peft 0.13+ writes it for LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=[...],
    // task_type="CAUSAL_LM") after save_pretrained: json.dumps(indent=2, sort_keys=True), composed from PEFT's LoraConfig fields.
    private const string PeftWritten = """
        {
          "alpha_pattern": {},
          "auto_mapping": null,
          "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
          "bias": "none",
          "corda_config": null,
          "eva_config": null,
          "exclude_modules": null,
          "fan_in_fan_out": false,
          "inference_mode": true,
          "init_lora_weights": true,
          "layer_replication": null,
          "layers_pattern": null,
          "layers_to_transform": null,
          "loftq_config": {},
          "lora_alpha": 32,
          "lora_bias": false,
          "lora_dropout": 0.05,
          "megatron_config": null,
          "megatron_core": "megatron.core",
          "modules_to_save": null,
          "peft_type": "LORA",
          "peft_version": "0.17.1",
          "r": 16,
          "rank_pattern": {},
          "revision": null,
          "target_modules": [
            "q_proj",
            "v_proj"
          ],
          "target_parameters": null,
          "task_type": "CAUSAL_LM",
          "use_dora": false,
          "use_rslora": false
        }
        """;

    [Fact]
    public void Config_as_peft_writes_it_loads_with_the_right_values_and_no_warnings()
    {
        var c = PeftAdapterConfigJson.Parse(PeftWritten, "adapter_config.json");

        Assert.Equal("LORA", c.PeftType);
        Assert.Equal("CAUSAL_LM", c.TaskType);
        Assert.Equal("meta-llama/Llama-2-7b-hf", c.BaseModelNameOrPath);
        Assert.Null(c.Revision);
        Assert.True(c.InferenceMode);
        Assert.Equal(16, c.R);
        Assert.Equal(32, c.LoraAlpha);
        Assert.Equal(0.05, c.LoraDropout);
        Assert.Equal(["q_proj", "v_proj"], c.TargetModules!.Names!);
        Assert.Null(c.TargetModules.Pattern);
        Assert.Equal("none", c.Bias);
        Assert.Equal(true, c.InitLoraWeights.Flag);
        Assert.False(c.UseDora);
        Assert.False(c.UseRslora);
        Assert.Empty(c.RankPattern);
        Assert.Equal("0.17.1", c.PeftVersion);
        Assert.Equal("megatron.core", c.AdditionalKeys["megatron_core"].GetString());
        Assert.Empty(c.Warnings);
        Assert.Equal(2.0, c.ScalingFor("model.layers.0.self_attn.q_proj"));
    }

    [Fact]
    public void Serialize_reproduces_peft_output_byte_for_byte()
    {
        var c = PeftAdapterConfigJson.Parse(PeftWritten, "adapter_config.json");

        Assert.Equal(PeftWritten.ReplaceLineEndings("\n"), PeftAdapterConfigJson.Serialize(c).ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Config_built_in_code_writes_every_key_peft_writes()
    {
        var c = new PeftAdapterConfig { PeftType = "LORA", R = 16, LoraAlpha = 32, LoraDropout = 0.05, TaskType = "CAUSAL_LM",
            BaseModelNameOrPath = "meta-llama/Llama-2-7b-hf", InferenceMode = true, PeftVersion = "0.17.1",
            TargetModules = PeftModuleSelector.FromNames("q_proj", "v_proj") };

        string json = PeftAdapterConfigJson.Serialize(c);

        using var doc = System.Text.Json.JsonDocument.Parse(json);
        string[] keys = [.. doc.RootElement.EnumerateObject().Select(p => p.Name)];
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        foreach (var k in new[] { "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "r", "lora_alpha",
                     "lora_dropout", "target_modules", "exclude_modules", "fan_in_fan_out", "bias", "use_rslora", "modules_to_save",
                     "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern", "use_dora",
                     "megatron_config", "megatron_core", "loftq_config", "eva_config", "corda_config", "lora_ga_config",
                     "layer_replication", "lora_bias", "target_parameters", "peft_version", "auto_mapping" })
            Assert.Contains(k, keys);
    }

    [Fact]
    public void Minimal_config_takes_peft_defaults()
    {
        var c = PeftAdapterConfigJson.Parse("{\"peft_type\": \"LORA\"}", "a.json");

        Assert.Equal(8, c.R);
        Assert.Equal(8, c.LoraAlpha);
        Assert.Equal(0, c.LoraDropout);
        Assert.Null(c.TargetModules);
        Assert.Equal("none", c.Bias);
        Assert.Equal(true, c.InitLoraWeights.Flag);
        Assert.False(c.InferenceMode);
    }

    [Fact]
    public void Regex_target_modules_patterns_and_method_init_are_read()
    {
        var c = PeftAdapterConfigJson.Parse("""
            {"peft_type":"LORA","r":8,"lora_alpha":16,"use_rslora":true,
             "target_modules":".*\\.(q_proj|v_proj)$","init_lora_weights":"pissa_niter_4",
             "layers_to_transform":3,"layers_pattern":"layers",
             "rank_pattern":{"v_proj":4,"layers\\.1\\..*":2},"alpha_pattern":{"q_proj":64}}
            """, "a.json");

        Assert.Equal(".*\\.(q_proj|v_proj)$", c.TargetModules!.Pattern);
        Assert.Equal("pissa_niter_4", c.InitLoraWeights.Method);
        Assert.Equal([3], c.LayersToTransform!);
        Assert.Equal("layers", c.LayersPattern!.Pattern);
        Assert.Equal(4, c.RankFor("model.layers.0.self_attn.v_proj"));
        Assert.Equal(2, c.RankFor("model.layers.1.mlp.up_proj"));
        Assert.Equal(8, c.RankFor("model.layers.0.self_attn.q_proj"));
        // "v_proj" must match a whole dotted suffix, not any substring.
        Assert.Equal(8, c.RankFor("model.layers.0.self_attn.xv_proj"));
        Assert.Equal(64 / Math.Sqrt(8), c.ScalingFor("model.layers.0.self_attn.q_proj"), 12);
        Assert.Equal(16 / 2.0, c.ScalingFor("model.layers.0.self_attn.v_proj"), 12);
    }

    [Fact]
    public void Unknown_keys_warn_and_survive_a_round_trip()
    {
        var c = PeftAdapterConfigJson.Parse("{\"peft_type\":\"LORA\",\"my_future_key\":{\"x\":[1,2]},\"trainable_token_indices\":null}", "cfg/adapter_config.json");

        var warning = Assert.Single(c.Warnings);
        Assert.Contains("my_future_key", warning);
        Assert.Contains("cfg/adapter_config.json", warning);
        var again = PeftAdapterConfigJson.Parse(PeftAdapterConfigJson.Serialize(c), "b.json");
        Assert.Equal("{\"x\":[1,2]}", again.AdditionalKeys["my_future_key"].GetRawText().Replace(" ", "").Replace("\n", ""));
        Assert.True(again.AdditionalKeys.ContainsKey("trainable_token_indices"));
    }

    [Theory]
    [InlineData("{\"r\": 8}")]
    [InlineData("{\"peft_type\": null}")]
    public void Missing_peft_type_fails_naming_the_file(string json)
    {
        var ex = Assert.Throws<PeftFormatException>(() => PeftAdapterConfigJson.Parse(json, "out/adapter_config.json"));

        Assert.Equal(PeftErrorKind.MissingPeftType, ex.Kind);
        Assert.Contains("out/adapter_config.json", ex.Message);
        Assert.Contains("peft_type", ex.Message);
    }

    [Theory]
    [InlineData("{\"peft_type\":\"LORA\",\"r\":0}", PeftErrorKind.InvalidField, "r")]
    [InlineData("{\"peft_type\":\"LORA\",\"r\":\"8\"}", PeftErrorKind.InvalidField, "r")]
    [InlineData("{\"peft_type\":\"LORA\",\"bias\":\"some\"}", PeftErrorKind.InvalidField, "bias")]
    [InlineData("{\"peft_type\":\"LORA\",\"task_type\":\"CHAT\"}", PeftErrorKind.InvalidField, "task_type")]
    [InlineData("{\"peft_type\":\"LORA\",\"target_modules\":5}", PeftErrorKind.InvalidField, "target_modules")]
    [InlineData("{\"peft_type\":\"LORA\",\"rank_pattern\":{\"(\":4}}", PeftErrorKind.InvalidField, "rank_pattern")]
    [InlineData("{\"peft_type\":\"LORA\",\"lora_dropout\":1.5}", PeftErrorKind.InvalidField, "lora_dropout")]
    [InlineData("{\"peft_type\":\"LORA\",\"r\":8,\"r\":16}", PeftErrorKind.InvalidJson, null)]
    [InlineData("[\"peft_type\"]", PeftErrorKind.InvalidJson, null)]
    [InlineData("{\"peft_type\":", PeftErrorKind.InvalidJson, null)]
    public void Invalid_values_are_refused_naming_the_key(string json, PeftErrorKind kind, string? key)
    {
        var ex = Assert.Throws<PeftFormatException>(() => PeftAdapterConfigJson.Parse(json, "adapter_config.json"));

        Assert.Equal(kind, ex.Kind);
        Assert.Equal(key, ex.Key);
        Assert.StartsWith("'adapter_config.json'", ex.Message);
    }
}
