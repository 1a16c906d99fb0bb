using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Formats.Tests.HuggingFace;

public class ModelConfigReaderTests
{
    // Published parameter counts (model cards / papers), each re-derived by hand from the config:
    // layers x (attention + 3 x hidden x intermediate + 2 x hidden) + embeddings (x2 unless tied) + final norm.
    [Theory]
    [InlineData(nameof(PublishedConfigs.Llama2_7B), 6_738_415_616L)]
    [InlineData(nameof(PublishedConfigs.Llama2_13B), 13_015_864_320L)]
    [InlineData(nameof(PublishedConfigs.Llama2_70B), 68_976_648_192L)]
    [InlineData(nameof(PublishedConfigs.Llama31_8B), 8_030_261_248L)]
    [InlineData(nameof(PublishedConfigs.Llama31_70B), 70_553_706_496L)]
    [InlineData(nameof(PublishedConfigs.Mistral7B_v01), 7_241_732_096L)]
    [InlineData(nameof(PublishedConfigs.TinyLlama_11B), 1_100_048_384L)]
    [InlineData(nameof(PublishedConfigs.Qwen25_05B), 494_032_768L)]
    [InlineData(nameof(PublishedConfigs.Qwen25_7B), 7_615_616_512L)]
    public void ParameterCount_MatchesPublishedCount(string config, long expected)
    {
        var spec = ModelConfigReader.Parse(Published(config));
        Assert.Equal(expected, spec.ParameterCount);
    }

    [Fact]
    public void Llama2_7B_Fields()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Llama2_7B);
        Assert.Equal("llama", spec.ModelType);
        Assert.Equal(32, spec.NumLayers);
        Assert.Equal(4096, spec.HiddenSize);
        Assert.Equal(11008, spec.IntermediateSize);
        Assert.Equal(32, spec.NumHeads);
        Assert.Equal(32, spec.NumKvHeads);
        Assert.Equal(128, spec.HeadDim);
        Assert.Equal(32000, spec.VocabSize);
        Assert.False(spec.TieWordEmbeddings);
        Assert.Equal(10000.0, spec.RopeTheta); // absent from this file: the RoPE default base
        Assert.Null(spec.RopeScaling);
        Assert.Equal(1e-5, spec.RmsNormEps);
        Assert.False(spec.AttentionBias);
        Assert.False(spec.OutputProjectionBias);
        Assert.Equal(4096, spec.MaxPositionEmbeddings);
        Assert.Null(spec.SlidingWindow);
        // 32 layers x 9 tensors + embed_tokens + norm + lm_head, as in the published safetensors index.
        Assert.Equal(291, spec.Tensors().Count());
    }

    [Fact]
    public void Llama31_8B_ReadsLlama3RopeScaling()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Llama31_8B);
        Assert.Equal(8, spec.NumKvHeads);
        Assert.Equal(4, spec.GroupSize);
        Assert.Equal(500000.0, spec.RopeTheta);
        Assert.Equal(131072, spec.MaxPositionEmbeddings);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), spec.RopeScaling);
    }

    [Fact]
    public void Mistral7B_RecordsSlidingWindow()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Mistral7B_v01);
        Assert.Equal("mistral", spec.ModelType);
        Assert.Equal(4096, spec.SlidingWindow);
        Assert.Equal(32768, spec.MaxPositionEmbeddings);
        Assert.False(spec.AttentionBias);
    }

    [Fact]
    public void Mistral_NullSlidingWindowMeansFullAttention_AbsentMeans4096()
    {
        var off = ModelConfigReader.Parse(PublishedConfigs.Mistral7B_v01.Replace("\"sliding_window\": 4096", "\"sliding_window\": null"));
        Assert.Null(off.SlidingWindow);
        var absent = ModelConfigReader.Parse(PublishedConfigs.Mistral7B_v01.Replace("\"sliding_window\": 4096,", ""));
        Assert.Equal(4096, absent.SlidingWindow);
    }

    [Fact]
    public void Qwen25_05B_HasQkvBiasesNoOutputBias_AndTiedEmbeddings()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Qwen25_05B);
        Assert.Equal("qwen2", spec.ModelType);
        Assert.True(spec.AttentionBias);
        Assert.False(spec.OutputProjectionBias);
        Assert.True(spec.TieWordEmbeddings);
        Assert.Equal(64, spec.HeadDim);
        Assert.Equal(1e-6, spec.RmsNormEps);
        Assert.Equal(1_000_000.0, spec.RopeTheta);
        Assert.Null(spec.SlidingWindow); // use_sliding_window is false
        var tensors = spec.Tensors().ToDictionary(t => t.Name);
        Assert.Equal([128L], tensors["model.layers.0.self_attn.k_proj.bias"].Shape);
        Assert.Equal([896L], tensors["model.layers.23.self_attn.q_proj.bias"].Shape);
        Assert.False(tensors.ContainsKey("model.layers.0.self_attn.o_proj.bias"));
        Assert.False(tensors.ContainsKey("lm_head.weight"));
        // 24 layers x (7 weights + 3 biases + 2 norms) + embed_tokens + norm: the published checkpoint's 290 tensors.
        Assert.Equal(290, tensors.Count);
    }

    [Fact]
    public void Qwen25_7B_IsNotTied()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Qwen25_7B);
        Assert.False(spec.TieWordEmbeddings);
        Assert.Equal(7, spec.GroupSize);
        Assert.Contains(spec.Tensors(), t => t.Name == "lm_head.weight");
    }

    [Fact]
    public void TinyLlama_Fields()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.TinyLlama_11B);
        Assert.Equal(22, spec.NumLayers);
        Assert.Equal(4, spec.NumKvHeads);
        Assert.Equal(64, spec.HeadDim);
        Assert.Equal(2048, spec.MaxPositionEmbeddings);
    }

    [Fact]
    public void Llama_AttentionBias_AddsBiasesToQkvAndO()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.TinyLlama_11B.Replace("\"attention_bias\": false", "\"attention_bias\": true"));
        Assert.True(spec.AttentionBias);
        Assert.True(spec.OutputProjectionBias);
        // Per layer: q (2048) + k (256) + v (256) + o (2048) bias elements.
        Assert.Equal(1_100_048_384L + 22L * (2048 + 256 + 256 + 2048), spec.ParameterCount);
    }

    [Fact]
    public void Mistral_IgnoresAttentionBias_AsTransformersDoes()
    {
        var spec = ModelConfigReader.Parse(PublishedConfigs.Mistral7B_v01.Replace("\"bos_token_id\"", "\"attention_bias\": true, \"bos_token_id\""));
        Assert.False(spec.AttentionBias);
    }

    // Absent num_key_value_heads: LlamaConfig falls back to the head count; MistralConfig's constructor
    // defaults it to 8 and Qwen2Config's to 32, whatever the head count.
    [Theory]
    [InlineData("llama", 16, 16)]
    [InlineData("mistral", 16, 8)]
    [InlineData("qwen2", 32, 32)]
    public void AbsentKvHeads_TakeFamilyDefault(string modelType, int heads, int expectedKvHeads)
    {
        string json = $$"""
            {"model_type": "{{modelType}}", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 64,
             "num_attention_heads": {{heads}}, "vocab_size": 10}
            """;
        Assert.Equal(expectedKvHeads, ModelConfigReader.Parse(json).NumKvHeads);
    }

    [Fact]
    public void ExplicitNullKvHeads_MeansHeadCount_ForEveryFamily()
    {
        foreach (var type in ModelConfigReader.SupportedModelTypes)
        {
            string json = $$"""
                {"model_type": "{{type}}", "num_hidden_layers": 2, "hidden_size": 48, "intermediate_size": 64,
                 "num_attention_heads": 6, "num_key_value_heads": null, "vocab_size": 10}
                """;
            Assert.Equal(6, ModelConfigReader.Parse(json).NumKvHeads);
        }
    }

    [Theory]
    [InlineData("llama", 2048, 1e-6)]
    [InlineData("mistral", 131072, 1e-6)]
    [InlineData("qwen2", 32768, 1e-6)]
    public void OptionalFields_TakeTransformersDefaults(string modelType, int maxPositions, double eps)
    {
        string json = $$"""
            {"model_type": "{{modelType}}", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
             "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100}
            """;
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(maxPositions, spec.MaxPositionEmbeddings);
        Assert.Equal(eps, spec.RmsNormEps);
        Assert.Equal(10000.0, spec.RopeTheta);
        Assert.False(spec.TieWordEmbeddings);
        Assert.Null(spec.RopeScaling);
    }

    [Fact]
    public void HeadDim_OverridesHiddenOverHeads()
    {
        string json = """
            {"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 100, "intermediate_size": 8,
             "num_attention_heads": 3, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 5}
            """;
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(32, spec.HeadDim);
        var tensors = spec.Tensors().ToDictionary(t => t.Name);
        Assert.Equal([96L, 100L], tensors["model.layers.0.self_attn.q_proj.weight"].Shape);
        Assert.Equal([100L, 96L], tensors["model.layers.0.self_attn.o_proj.weight"].Shape);
        Assert.Equal([32L, 100L], tensors["model.layers.0.self_attn.k_proj.weight"].Shape);
    }

    [Theory]
    [InlineData("rope_type", "linear")]
    [InlineData("type", "linear")]
    [InlineData("rope_type", "dynamic")]
    [InlineData("type", "dynamic")]
    public void LinearAndDynamicScaling_AcceptBothKeyNames(string key, string type)
    {
        string json = PublishedConfigs.Llama2_7B.Replace("\"rope_scaling\": null", $$"""
            "rope_scaling": {"{{key}}": "{{type}}", "factor": 2.0}
            """);
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(new RopeScaling(type, 2.0, OriginalMaxPositionEmbeddings: 4096), spec.RopeScaling);
    }

    [Fact]
    public void DefaultRopeType_MeansNoScaling()
    {
        string json = PublishedConfigs.Llama2_7B.Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"default\"}");
        Assert.Null(ModelConfigReader.Parse(json).RopeScaling);
    }

    [Fact]
    public void Transformers5RopeParameters_AreRead()
    {
        // transformers 5 folds rope_theta and the scaling keys into one rope_parameters object.
        string json = """
            {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 131072,
             "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
            """;
        var spec = ModelConfigReader.Parse(json);
        Assert.Equal(500000.0, spec.RopeTheta);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), spec.RopeScaling);
        var plain = ModelConfigReader.Parse(json.Replace("\"llama3\"", "\"default\""));
        Assert.Null(plain.RopeScaling);
        Assert.Equal(500000.0, plain.RopeTheta);
    }

    [Fact]
    public void Read_AcceptsFolderOrFile()
    {
        string dir = Directory.CreateTempSubdirectory("qp-cfg-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), PublishedConfigs.Qwen25_05B);
            var fromFolder = ModelConfigReader.Read(dir);
            var fromFile = ModelConfigReader.Read(Path.Combine(dir, "config.json"));
            Assert.Equal(494_032_768L, fromFolder.ParameterCount);
            Assert.Equal(fromFolder, fromFile);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    internal static string Published(string name) =>
        (string)typeof(PublishedConfigs).GetField(name)!.GetValue(null)!;
}
