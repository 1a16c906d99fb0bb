using System.CommandLine;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace QuantPeft.Cli.Tests.Handoff;

/// <summary>
/// <c>qpeft plan --gpus N --engine axolotl|accelerate --engine-config FILE</c> end to end: the configs are read back
/// with an independent YAML reader, every key checked against the engine's documented schema (fixtures with their
/// source commits), every value against its documented type, and the values against the plan they reproduce.
/// </summary>
public sealed class PlanHandoffCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private static JsonElement Chosen(string planJson)
    {
        JsonElement root = JsonDocument.Parse(File.ReadAllText(planJson)).RootElement.Clone();
        Assert.Equal(0, root.GetProperty("chosen").GetInt32());
        return root.GetProperty("candidates")[0];
    }

    [Fact]
    public void AxolotlConfigUsesOnlyDocumentedKeysWithDocumentedTypes()
    {
        using var dir = new TempFolder();
        string yml = Path.Combine(dir.Path, "out.yml"), json = Path.Combine(dir.Path, "plan.json");
        var (code, _, err) = Run("plan", "llama-3.1-70b", "--gpus", "2", "--vram", "24GiB", "--ram", "128GiB",
            "--engine", "axolotl", "--engine-config", yml, "--format", "json", "-o", json);
        Assert.True(code == 0, err);

        JsonElement schema = EngineSchemas.Axolotl;
        JsonElement top = schema.GetProperty("top_level"), fsdp = schema.GetProperty("fsdp_config");
        var deprecated = schema.GetProperty("deprecated").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        YamlMappingNode config = EngineSchemas.ReadYaml(yml);
        var problems = new List<string>();
        foreach (var (k, v) in config.Children)
        {
            string key = ((YamlScalarNode)k).Value!;
            if (!top.TryGetProperty(key, out JsonElement annotation)) { problems.Add($"{key}: not in axolotl's schema"); continue; }
            if (deprecated.Contains(key)) problems.Add($"{key}: deprecated in axolotl's schema");
            if (!EngineSchemas.MatchesPython(annotation.GetString()!, v, out string why)) problems.Add($"{key}: {why}");
        }
        foreach (var (k, v) in (YamlMappingNode)config["fsdp_config"])
        {
            string key = ((YamlScalarNode)k).Value!;
            if (!fsdp.TryGetProperty(key, out JsonElement annotation)) { problems.Add($"fsdp_config.{key}: not in FSDPConfig"); continue; }
            if (!EngineSchemas.MatchesPython(annotation.GetString()!, v, out string why)) problems.Add($"fsdp_config.{key}: {why}");
        }
        // Open-string fields whose accepted values are documented elsewhere.
        var optimizers = EngineSchemas.Transformers.GetProperty("optimizer_names").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains(Scalar(config, "optimizer"), optimizers);
        Assert.Contains(Scalar(config, "attn_implementation"), schema.GetProperty("attn_implementations").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains(Scalar(config, "adapter"), new[] { "lora", "qlora" });
        Assert.Empty(problems);

        // The config reproduces the chosen plan.
        JsonElement s = Chosen(json).GetProperty("strategy");
        Assert.Equal("nf4", s.GetProperty("weights").GetString());
        Assert.Equal("qlora", Scalar(config, "adapter"));
        Assert.Equal("true", Scalar(config, "load_in_4bit"));
        Assert.Equal(s.GetProperty("rank").GetInt32().ToString(), Scalar(config, "lora_r"));
        Assert.Equal(s.GetProperty("batch").GetInt32().ToString(), Scalar(config, "micro_batch_size"));
        Assert.Equal("2048", Scalar(config, "sequence_len"));
        Assert.Equal(s.GetProperty("checkpointing").GetBoolean() ? "true" : "false", Scalar(config, "gradient_checkpointing"));
        Assert.Equal(s.GetProperty("offload_params").GetBoolean() ? "true" : "false", Scalar((YamlMappingNode)config["fsdp_config"], "offload_params"));
        Assert.Equal("all-linear", s.GetProperty("targets").GetString());
        Assert.Equal("true", Scalar(config, "lora_target_linear"));
        Assert.Equal("LlamaDecoderLayer", Scalar((YamlMappingNode)config["fsdp_config"], "transformer_layer_cls_to_wrap"));
        Assert.Equal("meta-llama/Llama-3.1-70B", Scalar(config, "base_model"));
        Assert.True(Chosen(json).GetProperty("peak_bytes_per_gpu").GetInt64() <= 24L << 30);
    }

    [Fact]
    public void AccelerateConfigAndTrainingArgumentsUseOnlyDocumentedKeys()
    {
        using var dir = new TempFolder();
        string yml = Path.Combine(dir.Path, "fsdp.yaml"), json = Path.Combine(dir.Path, "plan.json");
        var (code, _, err) = Run("plan", "llama-2-7b", "--gpus", "4", "--vram", "16GiB", "--targets", "q,k,v,o", "--weights", "nf4",
            "--engine", "accelerate", "--engine-config", yml, "--format", "json", "-o", json);
        Assert.True(code == 0, err);

        JsonElement schema = EngineSchemas.Accelerate, enums = schema.GetProperty("enums");
        YamlMappingNode config = EngineSchemas.ReadYaml(yml);
        var problems = new List<string>();
        foreach (var (k, v) in config.Children)
        {
            string key = ((YamlScalarNode)k).Value!;
            if (!schema.GetProperty("top_level").TryGetProperty(key, out JsonElement type)) problems.Add($"{key}: not an accelerate config field");
            else if (!EngineSchemas.MatchesListed(type, enums, v)) problems.Add($"{key}: '{v}' is not {type}");
        }
        foreach (var (k, v) in (YamlMappingNode)config["fsdp_config"])
        {
            string key = ((YamlScalarNode)k).Value!;
            if (!schema.GetProperty("fsdp_config").TryGetProperty(key, out JsonElement type)) problems.Add($"fsdp_config.{key}: not written by accelerate config");
            else if (!EngineSchemas.MatchesListed(type, enums, v)) problems.Add($"fsdp_config.{key}: '{v}' is not {type}");
        }
        Assert.Empty(problems);
        Assert.Equal("FSDP", Scalar(config, "distributed_type"));
        Assert.Equal("4", Scalar(config, "num_processes"));
        Assert.Equal("FULL_SHARD", Scalar((YamlMappingNode)config["fsdp_config"], "fsdp_reshard_after_forward"));

        string argsPath = Path.Combine(dir.Path, "fsdp.training-args.json");
        JsonElement args = JsonDocument.Parse(File.ReadAllText(argsPath)).RootElement;
        JsonElement tf = EngineSchemas.Transformers;
        var optimizers = tf.GetProperty("optimizer_names").EnumerateArray().Select(e => e.GetString()!).ToList();
        foreach (var (section, fixture) in new[] { ("training_arguments", "training_arguments"), ("bitsandbytes", "bitsandbytes"), ("lora", "lora") })
            foreach (JsonProperty p in args.GetProperty(section).EnumerateObject())
            {
                if (!tf.GetProperty(fixture).TryGetProperty(p.Name, out JsonElement type)) problems.Add($"{section}.{p.Name}: not documented");
                else if (!EngineSchemas.MatchesListed(type, p.Value, optimizers)) problems.Add($"{section}.{p.Name}: {p.Value} is not {type}");
            }
        Assert.Empty(problems);

        JsonElement s = Chosen(json).GetProperty("strategy");
        Assert.Equal(s.GetProperty("batch").GetInt32(), args.GetProperty("training_arguments").GetProperty("per_device_train_batch_size").GetInt32());
        Assert.Equal(s.GetProperty("rank").GetInt32(), args.GetProperty("lora").GetProperty("r").GetInt32());
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj"], args.GetProperty("lora").GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal("bfloat16", args.GetProperty("bitsandbytes").GetProperty("bnb_4bit_quant_storage").GetString());
        Assert.Equal(s.GetProperty("offload_params").GetBoolean() ? "true" : "false", Scalar((YamlMappingNode)config["fsdp_config"], "fsdp_offload_params"));
    }

    [Theory]
    [InlineData("--engine", new[] { "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--gpus", new[] { "--gpus", "0", "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--engine", new[] { "--gpus", "1", "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--engine", new[] { "--gpus", "2", "--engine", "deepspeed", "--engine-config", "X" })]
    [InlineData("--engine-config", new[] { "--gpus", "2", "--engine-config", "X" })]
    [InlineData("--engine", new[] { "--gpus", "2", "--engine", "axolotl" })]
    [InlineData("--format", new[] { "--gpus", "2", "--format", "html", "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--offload-params", new[] { "--offload-params", "on" })]
    [InlineData("--offload-params", new[] { "--gpus", "2", "--offload-params", "maybe" })]
    [InlineData("--method", new[] { "--gpus", "2", "--method", "dora", "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--optimizer", new[] { "--gpus", "2", "--optimizer", "paged-adamw-8bit", "--engine", "axolotl", "--engine-config", "X" })]
    [InlineData("--device-kind", new[] { "--gpus", "2", "--device-kind", "cpu" })]
    [InlineData("--engine-config", new[] { "--gpus", "2", "--vram", "4GiB", "--engine", "axolotl", "--engine-config", "X" })]
    public void BadFlagsExitOneNamingTheFlagAndWriteNothing(string named, string[] flags)
    {
        using var dir = new TempFolder();
        string target = Path.Combine(dir.Path, "out.yml"), report = Path.Combine(dir.Path, "report.md");
        string[] args = ["plan", "llama-2-70b", .. flags.Select(f => f == "X" ? target : f), "-o", report];
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(1, code);
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(named, line);
        Assert.Empty(stdout);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AMissingFolderWritesNeitherTheConfigNorTheReport()
    {
        using var dir = new TempFolder();
        string report = Path.Combine(dir.Path, "plan.md");
        var (code, _, stderr) = Run("plan", "llama-2-7b", "--gpus", "2", "--vram", "24GiB", "--engine", "accelerate",
            "--engine-config", Path.Combine(dir.Path, "missing", "fsdp.yaml"), "--format", "md", "-o", report);
        Assert.Equal(1, code);
        Assert.Contains("--engine-config", stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void GpusOneIsTheSingleGpuPlan()
    {
        string[] args = ["plan", "llama-2-7b", "--method", "lora", "--vram", "24GiB", "--format", "json"];
        var (code1, single, _) = Run(args);
        var (code2, withOne, _) = Run([.. args, "--gpus", "1"]);
        Assert.Equal(0, code1);
        Assert.Equal(0, code2);
        Assert.Equal(single, withOne);
        Assert.DoesNotContain("sharding", single);
    }

    [Fact]
    public void ShardingLetsTwoCardsHoldWhatOneCannot()
    {
        // 70B QLoRA does not fit one 24 GiB card (the 4-bit base alone is about 34 GiB); over two it does.
        var (c1, one, _) = Run("plan", "llama-2-70b", "--method", "lora", "--weights", "nf4", "--vram", "24GiB", "--format", "json");
        var (c2, two, _) = Run("plan", "llama-2-70b", "--method", "lora", "--weights", "nf4", "--vram", "24GiB", "--gpus", "2", "--format", "json");
        Assert.Equal(0, c1);
        Assert.Equal(0, c2);
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(one).RootElement.GetProperty("chosen").ValueKind);
        JsonElement root = JsonDocument.Parse(two).RootElement;
        Assert.Equal("fsdp", root.GetProperty("sharding").GetString());
        Assert.Equal(0, root.GetProperty("chosen").GetInt32());
    }

    private static string Scalar(YamlMappingNode map, string key) => ((YamlScalarNode)map[key]).Value!;
}
