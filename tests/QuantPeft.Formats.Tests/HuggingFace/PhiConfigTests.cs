using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Formats.Tests.HuggingFace;

/// <summary>
/// Phi-3, Phi-3.5 and Phi-4 (<c>model_type: phi3</c>): config.json files with the architecture fields of the published
/// checkpoints (microsoft/Phi-3-mini-4k-instruct, Phi-3-medium-4k-instruct, phi-4, Phi-4-mini-instruct on the Hugging Face
/// Hub), the Phi-3-vision text config kept under tests/fixtures/model-configs, and the variants QuantPeft refuses.
/// </summary>
public class PhiConfigTests
{
    private const string Phi3Mini4k = """
        {"architectures": ["Phi3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1,
         "embd_pdrop": 0.0, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
         "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 32,
         "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096, "pad_token_id": 32000,
         "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "sliding_window": 2047,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32064}
        """;

    private const string Phi3Medium4k = """
        {"architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
         "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02, "intermediate_size": 17920,
         "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 40, "num_hidden_layers": 40,
         "num_key_value_heads": 10, "original_max_position_embeddings": 4096, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05,
         "rope_scaling": null, "rope_theta": 10000.0, "sliding_window": 2047, "tie_word_embeddings": false,
         "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32064}
        """;

    private const string Phi4 = """
        {"architectures": ["Phi3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 100257,
         "embd_pdrop": 0.0, "eos_token_id": 100257, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
         "intermediate_size": 17920, "max_position_embeddings": 16384, "model_type": "phi3", "num_attention_heads": 40,
         "num_hidden_layers": 40, "num_key_value_heads": 10, "original_max_position_embeddings": 16384, "pad_token_id": 100257,
         "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 250000, "sliding_window": null,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 100352}
        """;

    private static string Fixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "model-configs", name);
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException($"tests/fixtures/model-configs/{name} not found above {AppContext.BaseDirectory}");
    }

    [Theory]
    // keras-hub phi3_presets.py: 3,821,079,552 for Phi-3-mini (4k and 128k); the Hub's safetensors totals for the others.
    [InlineData(Phi3Mini4k, 3_821_079_552L)]
    [InlineData(Phi3Medium4k, 13_960_238_080L)]
    [InlineData(Phi4, 14_659_507_200L)]
    public void ParameterCount_MatchesThePublishedTotal(string json, long expected) =>
        Assert.Equal(expected, ModelConfigReader.Parse(json).ParameterCount);

    [Fact]
    public void Phi3_FusesQkvAndGateUp_WindowsEveryLayer_NormEpsFromTheConfig()
    {
        var spec = ModelConfigReader.Parse(Phi3Medium4k);
        Assert.True(spec.FusedProjections);
        var layer = spec.Tensors().Where(t => t.Layer == 7).ToDictionary(t => t.Name, t => t.Shape);
        // 40 query heads and 10 kv heads of 128: q 5120 + k 1280 + v 1280 rows; gate 17920 rows above up 17920.
        Assert.Equal([7680L, 5120L], layer["model.layers.7.self_attn.qkv_proj.weight"]);
        Assert.Equal([35840L, 5120L], layer["model.layers.7.mlp.gate_up_proj.weight"]);
        Assert.DoesNotContain("model.layers.7.self_attn.q_proj.weight", layer.Keys);
        Assert.DoesNotContain("model.layers.7.mlp.gate_proj.weight", layer.Keys);
        Assert.Equal(6, layer.Count);
        Assert.All(Enumerable.Range(0, 40), l => Assert.Equal(2047, spec.WindowOf(l)));
        Assert.Null(ModelConfigReader.Parse(Phi4).WindowOf(0));
    }

    [Fact]
    public void Phi3_Defaults_AreConfigurationPhi3s()
    {
        // Absent fields: num_key_value_heads = heads, rms_norm_eps 1e-5, rope_theta 1e4, no window, untied head.
        var spec = ModelConfigReader.Parse("""
            {"model_type": "phi3", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96,
             "num_attention_heads": 4, "vocab_size": 300}
            """);
        Assert.Equal(4, spec.NumKvHeads);
        Assert.Equal(1e-5, spec.RmsNormEps);
        Assert.Equal(10000.0, spec.RopeTheta);
        Assert.Null(spec.SlidingWindow);
        Assert.False(spec.TieWordEmbeddings);
        Assert.Equal(16, spec.RotaryDim);
    }

    [Fact]
    public void Longrope_FromThePublishedPhi3VisionTextConfig()
    {
        var spec = ModelConfigReader.Read(Fixture("Phi-3-vision-128k-instruct-text.config.json"));
        var rope = spec.RopeScaling!;
        Assert.Equal("longrope", rope.Type);                     // written as its first name, "su"
        Assert.Equal(4096, rope.OriginalMaxPositionEmbeddings);   // from the top level
        Assert.Equal(32.0, rope.Factor);                          // 131072 / 4096
        Assert.Equal(48, rope.ShortFactor!.Count);                // head_dim 96 / 2
        Assert.Equal(1.05, rope.ShortFactor[0]);
        Assert.Equal(64.81001281738281, rope.LongFactor![47]);
        // √(1 + ln 32 / ln 4096) = √(1 + 5/12) by hand.
        Assert.Equal(Math.Sqrt(17.0 / 12.0), rope.CosSinScale, 12);
        Assert.Equal(131072, spec.WindowOf(0));
        Assert.Equal(3_821_079_552L, spec.ParameterCount);
    }

    [Fact]
    public void PartialRotary_RotatesTheLeadingFraction_AndLongropeListsCoverIt()
    {
        // Phi-4-mini-instruct: head_dim 3072 / 24 = 128, factor 0.75 → 96 rotated dims, 48 factors each.
        string json = PhiMini(48);
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(0.75, spec.PartialRotaryFactor);
        Assert.Equal(96, spec.RotaryDim);
        Assert.True(spec.TieWordEmbeddings);
        Assert.Equal(48, spec.RopeScaling!.LongFactor!.Count);
        Assert.Equal(3_836_021_760L, spec.ParameterCount);   // 3.84B on the Hub's Phi-4-mini-instruct page (tied head)
    }

    private static string PhiMini(int factors, double partial = 0.75, string type = "longrope")
    {
        string list = "[" + string.Join(", ", Enumerable.Repeat("1.0", factors)) + "]";
        return $$"""
            {"architectures": ["Phi3ForCausalLM"], "hidden_act": "silu", "hidden_size": 3072, "intermediate_size": 8192,
             "max_position_embeddings": 131072, "model_type": "phi3", "num_attention_heads": 24, "num_hidden_layers": 32,
             "num_key_value_heads": 8, "original_max_position_embeddings": 4096, "partial_rotary_factor": {{partial}},
             "rms_norm_eps": 1e-05, "rope_scaling": {"long_factor": {{list}}, "short_factor": {{list}}, "type": "{{type}}"},
             "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": true, "vocab_size": 200064}
            """;
    }

    [Theory]
    [InlineData(47, 0.75, "longrope", "rope_scaling.short_factor", "48")]
    [InlineData(48, 0.73, "longrope", "partial_rotary_factor", "93")]
    [InlineData(48, 0.75, "yarn", "rope_scaling.type", "yarn")]
    public void BadPhi3Fields_NameTheField(int factors, double partial, string type, string field, string detail)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(PhiMini(factors, partial, type), "phi/config.json"));
        Assert.Contains("phi/config.json", e.Message);
        Assert.Contains(field, e.Message);
        Assert.Contains(detail, e.Message);
    }

    [Theory]
    [InlineData("phimoe", "mixture-of-experts")]
    [InlineData("phi3small", "block-sparse")]
    public void PhiVariantsOutsideTheDenseDecoder_AreRefused(string modelType, string why)
    {
        string json = Phi3Mini4k.Replace("\"model_type\": \"phi3\"", $"\"model_type\": \"{modelType}\"", StringComparison.Ordinal);
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(json, "x/config.json"));
        Assert.Contains("x/config.json", e.Message);
        Assert.Contains("model_type", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void PartialRotary_OnAnotherFamily_IsRefused()
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse("""
            {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96,
             "num_attention_heads": 4, "vocab_size": 300, "partial_rotary_factor": 0.5}
            """));
        Assert.Contains("partial_rotary_factor", e.Message);
    }

    [Theory]
    [InlineData("mini4k")]
    [InlineData("phi4")]
    [InlineData("longrope")]
    public void WriterRoundTrip_KeepsEveryPhi3Field(string which)
    {
        var spec = which switch
        {
            "mini4k" => ModelConfigReader.Parse(Phi3Mini4k),
            "phi4" => ModelConfigReader.Parse(Phi4),
            _ => ModelConfigReader.Parse(PhiMini(48)),
        };
        string json = ModelConfigWriter.ToJson(spec);
        var back = ModelConfigReader.Parse(json);
        Assert.Equal(spec, back);
        Assert.Contains("\"model_type\": \"phi3\"", json, StringComparison.Ordinal);
        Assert.Contains("Phi3ForCausalLM", json, StringComparison.Ordinal);
        if (which == "longrope")
        {
            Assert.Contains("\"partial_rotary_factor\": 0.75", json, StringComparison.Ordinal);
            Assert.Contains("\"original_max_position_embeddings\": 4096", json, StringComparison.Ordinal);
            Assert.Contains("\"type\": \"longrope\"", json, StringComparison.Ordinal);
        }
    }
}
