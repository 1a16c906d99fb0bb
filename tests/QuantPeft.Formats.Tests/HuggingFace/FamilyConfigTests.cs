using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Formats.Tests.HuggingFace;

/// <summary>
/// The families added after llama/mistral/qwen2: config.json files with the architecture fields of the published
/// checkpoints (Qwen/Qwen3-8B, meta-llama/Llama-3.2-1B, google/gemma-2-2b, google/gemma-3-1b-pt,
/// mistralai/Mistral-Nemo-Base-2407 on the Hugging Face Hub), and the variants QuantPeft refuses.
/// </summary>
public class FamilyConfigTests
{
    private const string Qwen3_8B = """
        {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
         "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
         "intermediate_size": 12288, "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
         "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
         "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": false,
         "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
        """;

    private const string Llama32_1B = """
        {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
         "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
         "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
         "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
         "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
         "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
         "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 128256}
        """;

    private const string Gemma2_2B = """
        {"architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
         "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
         "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
         "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02, "intermediate_size": 9216,
         "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8, "num_hidden_layers": 26,
         "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
         "rope_theta": 10000.0, "sliding_window": 4096, "torch_dtype": "float32", "use_cache": true, "vocab_size": 256000}
        """;

    private const string Gemma3_1B = """
        {"architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
         "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
         "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
         "initializer_range": 0.02, "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
         "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
         "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000, "rope_scaling": null,
         "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
         "use_cache": true, "vocab_size": 262144}
        """;

    private const string MistralNemo = """
        {"architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
         "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02, "intermediate_size": 14336,
         "max_position_embeddings": 1024000, "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 40,
         "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 131072}
        """;

    [Theory]
    [InlineData(Qwen3_8B, 8_190_735_360L)]
    [InlineData(Llama32_1B, 1_235_814_400L)]
    [InlineData(Gemma2_2B, 2_614_341_888L)]
    [InlineData(Gemma3_1B, 999_885_952L)]
    [InlineData(MistralNemo, 12_247_782_400L)]
    public void ParameterCount_MatchesThePublishedTotal(string json, long expected) =>
        Assert.Equal(expected, ModelConfigReader.Parse(json).ParameterCount);

    [Fact]
    public void Qwen3_HasQkNormsOfHeadDim_NoBiases()
    {
        var spec = ModelConfigReader.Parse(Qwen3_8B);
        Assert.True(spec.QkNorm);
        Assert.False(spec.AttentionBias);
        Assert.Equal(128, spec.HeadDim);
        var norms = spec.Tensors().Where(t => t.Name.StartsWith("model.layers.0.self_attn.", StringComparison.Ordinal) && t.Role == TensorRole.Norm).ToList();
        Assert.Equal(["model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight"], norms.Select(t => t.Name));
        Assert.All(norms, t => Assert.Equal([128L], t.Shape));
    }

    [Fact]
    public void Qwen3_HeadDimDefaultsTo128_NotHiddenOverHeads()
    {
        var spec = ModelConfigReader.Parse("""{"model_type": "qwen3", "num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300}""");
        Assert.Equal(128, spec.HeadDim);
    }

    [Fact]
    public void Llama32_IsTiedWithLlama3Scaling_AndHasNoLmHead()
    {
        var spec = ModelConfigReader.Parse(Llama32_1B);
        Assert.True(spec.TieWordEmbeddings);
        Assert.Equal(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), spec.RopeScaling);
        Assert.DoesNotContain(spec.Tensors(), t => t.Name == "lm_head.weight");
    }

    [Fact]
    public void Gemma2_Fields_AndTheDefaultAlternation()
    {
        var spec = ModelConfigReader.Parse(Gemma2_2B);
        Assert.True(spec.GemmaStyle);
        Assert.True(spec.TieWordEmbeddings);   // absent: Gemma's default is tied
        Assert.Equal(50.0, spec.AttnLogitSoftcap);
        Assert.Equal(30.0, spec.FinalLogitSoftcap);
        Assert.Equal(1.0 / 16.0, spec.AttentionScale, 12);
        Assert.Equal([4096, null, 4096, null], Enumerable.Range(0, 4).Select(spec.WindowOf).ToArray());
        Assert.Equal(4, spec.Tensors().Count(t => t.Layer == 0 && t.Role == TensorRole.Norm));
    }

    [Fact]
    public void Gemma3_FiveLocalToOneGlobal_QkNorms_NoSoftcap_LocalRopeBase()
    {
        var spec = ModelConfigReader.Parse(Gemma3_1B);
        Assert.True(spec.QkNorm);
        Assert.Null(spec.AttnLogitSoftcap);
        Assert.Null(spec.FinalLogitSoftcap);
        Assert.Equal(10000.0, spec.RopeLocalTheta);
        Assert.Equal(1_000_000.0, spec.RopeTheta);
        Assert.Equal([512, 512, 512, 512, 512, null, 512], Enumerable.Range(0, 7).Select(spec.WindowOf).ToArray());
    }

    [Fact]
    public void Gemma_LayerTypesDecideTheWindowedLayers()
    {
        string json = Gemma2_2B.Replace("\"num_hidden_layers\": 26", "\"num_hidden_layers\": 3")
            .Replace("\"sliding_window\": 4096", "\"sliding_window\": 4096, \"layer_types\": [\"sliding_attention\", \"sliding_attention\", \"full_attention\"]");
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal([4096, 4096, null], Enumerable.Range(0, 3).Select(spec.WindowOf).ToArray());
    }

    [Fact]
    public void MistralNemo_ExplicitHeadDim_AndNoWindow()
    {
        var spec = ModelConfigReader.Parse(MistralNemo);
        Assert.Equal(128, spec.HeadDim);
        Assert.Null(spec.SlidingWindow);
        Assert.Equal([4096L, 5120L], spec.Tensors().Single(t => t.Name == "model.layers.0.self_attn.q_proj.weight").Shape);
    }

    [Theory]
    [InlineData("""{"model_type": "gemma3", "vision_config": {}, "text_config": {}}""", "vision_config", "multimodal")]
    [InlineData("""{"model_type": "qwen3", "num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, "num_experts": 8}""", "num_experts", "mixture-of-experts")]
    [InlineData("""{"model_type": "qwen3_moe", "num_hidden_layers": 1}""", "model_type", "not supported")]
    [InlineData("""{"model_type": "gemma2", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "vocab_size": 300, "layer_types": ["full_attention", "sliding_attention"]}""", "layer_types", "regular pattern")]
    [InlineData("""{"model_type": "gemma2", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "vocab_size": 300, "hidden_activation": "gelu"}""", "hidden_activation", "gelu_pytorch_tanh")]
    [InlineData("""{"model_type": "qwen3", "num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, "use_sliding_window": true}""", "use_sliding_window", "max_window_layers")]
    public void Unsupported_NamesTheFileAndTheField(string json, string field, string words)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(json, "some/config.json"));
        Assert.Contains("some/config.json", e.Message);
        Assert.Contains(field, e.Message);
        Assert.Contains(words, e.Message);
    }

    [Theory]
    [InlineData(Qwen3_8B)]
    [InlineData(Llama32_1B)]
    [InlineData(Gemma2_2B)]
    [InlineData(Gemma3_1B)]
    [InlineData(MistralNemo)]
    public void WrittenConfig_ReadsBackEqual(string json)
    {
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(spec, ModelConfigReader.Parse(ModelConfigWriter.ToJson(spec)));
    }
}
