using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Formats.Tests.HuggingFace;

public class ModelConfigErrorTests
{
    private const string Source = "models/llama-2-7b/config.json";

    [Fact]
    public void MissingFile_NamesThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"qp-missing-{Guid.NewGuid():N}", "config.json");
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not found", e.Message);
        Assert.IsAssignableFrom<QuantPeftException>(e);
    }

    [Fact]
    public void FolderWithoutConfig_NamesTheExpectedFile()
    {
        string dir = Directory.CreateTempSubdirectory("qp-cfg-").FullName;
        try
        {
            var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Read(dir));
            Assert.Contains(Path.Combine(dir, "config.json"), e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("{\"model_type\": \"llama\",")]
    [InlineData("not json")]
    [InlineData("")]
    public void InvalidJson_NamesTheFile(string text)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(text, Source));
        Assert.Contains(Source, e.Message);
        Assert.Contains("not valid JSON", e.Message);
        Assert.Null(e.Field);
    }

    [Fact]
    public void InvalidJson_GivesTheOneBasedLine()
    {
        string json = "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 40 96\n}";
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(json, Source));
        Assert.Contains("(line 3,", e.Message);
        Assert.DoesNotContain("LineNumber", e.Message);
    }

    [Fact]
    public void NonObjectRoot_IsRejected()
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse("[1, 2]", Source));
        Assert.Contains(Source, e.Message);
        Assert.Contains("an array", e.Message);
    }

    [Theory]
    [InlineData("model_type")]
    [InlineData("num_hidden_layers")]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void MissingRequiredField_NamesIt(string field)
    {
        // Renaming the key keeps the JSON valid wherever the line sits.
        string json = Swap(PublishedConfigs.Llama2_7B, $"\"{field}\":", $"\"renamed_{field}\":");
        AssertFieldError(json, field, "missing");
    }

    [Theory]
    [InlineData("\"hidden_size\": 4096", "\"hidden_size\": \"4096\"", "hidden_size", "the string \"4096\"")]
    [InlineData("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 32.5", "num_hidden_layers", "32.5")]
    [InlineData("\"vocab_size\": 32000", "\"vocab_size\": 1e12", "vocab_size", "1e12")]
    [InlineData("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": \"false\"", "tie_word_embeddings", "true or false")]
    [InlineData("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": [1e-05]", "rms_norm_eps", "an array")]
    [InlineData("\"model_type\": \"llama\"", "\"model_type\": 7", "model_type", "must be a string")]
    [InlineData("\"rope_scaling\": null", "\"rope_scaling\": \"llama3\"", "rope_scaling", "must be an object")]
    [InlineData("\"rope_scaling\": null", "\"rope_theta\": \"fast\"", "rope_theta", "must be a number")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": 1", "hidden_act", "must be a string")]
    public void WrongType_NamesFieldAndWhatWasFound(string from, string to, string field, string found)
    {
        AssertFieldError(Swap(PublishedConfigs.Llama2_7B, from, to), field, found);
    }

    [Theory]
    [InlineData("num_hidden_layers", "32")]
    [InlineData("hidden_size", "4096")]
    [InlineData("intermediate_size", "11008")]
    [InlineData("num_attention_heads", "32")]
    [InlineData("num_key_value_heads", "32")]
    [InlineData("vocab_size", "32000")]
    [InlineData("max_position_embeddings", "4096")]
    public void NonPositiveSize_NamesIt(string field, string published)
    {
        foreach (string bad in new[] { "0", "-1" })
        {
            string json = Swap(PublishedConfigs.Llama2_7B, $"\"{field}\": {published}", $"\"{field}\": {bad}");
            AssertFieldError(json, field, $"positive integer, found {bad}");
        }
    }

    [Fact]
    public void NonPositiveHeadDim_NamesIt()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"hidden_act\"", "\"head_dim\": 0, \"hidden_act\"");
        AssertFieldError(json, "head_dim", "positive integer, found 0");
    }

    [Theory]
    [InlineData("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 0", "rms_norm_eps")]
    [InlineData("\"rope_scaling\": null", "\"rope_theta\": -10000.0", "rope_theta")]
    public void NonPositiveFloat_NamesIt(string from, string to, string field)
    {
        AssertFieldError(Swap(PublishedConfigs.Llama2_7B, from, to), field, "must be positive");
    }

    [Fact]
    public void HeadsNotDividingHidden_NamesBothFields()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"num_attention_heads\": 32", "\"num_attention_heads\": 48");
        json = Swap(json, "\"num_key_value_heads\": 32", "\"num_key_value_heads\": 48");
        var e = AssertFieldError(json, "num_attention_heads", "must divide hidden_size (4096)");
        Assert.Contains("48", e.Message);
    }

    [Fact]
    public void HeadsNotDividingHidden_IsFineWithExplicitHeadDim()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"num_attention_heads\": 32", "\"head_dim\": 64, \"num_attention_heads\": 48");
        json = Swap(json, "\"num_key_value_heads\": 32", "\"num_key_value_heads\": 48");
        Assert.Equal(64, ModelConfigReader.Parse(json).HeadDim);
    }

    [Fact]
    public void KvHeadsNotDividingHeads_NamesIt()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"num_key_value_heads\": 32", "\"num_key_value_heads\": 5");
        var e = AssertFieldError(json, "num_key_value_heads", "must divide num_attention_heads (32)");
        Assert.Contains("found 5", e.Message);
    }

    [Fact]
    public void UnknownModelType_ListsSupportedOnes()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"");
        var e = AssertFieldError(json, "model_type", "'gpt2' is not supported");
        Assert.Contains("llama, mistral, qwen2", e.Message);
    }

    [Theory]
    [InlineData("{\"rope_type\": \"yarn\", \"factor\": 4.0}", "rope_scaling.rope_type", "'yarn' is not a supported")]
    [InlineData("{\"type\": \"ntk\", \"factor\": 4.0}", "rope_scaling.type", "'ntk' is not a supported")]
    [InlineData("{\"factor\": 4.0}", "rope_scaling.rope_type", "missing")]
    [InlineData("{\"rope_type\": \"linear\"}", "rope_scaling.factor", "missing")]
    [InlineData("{\"rope_type\": \"dynamic\", \"factor\": 0}", "rope_scaling.factor", "must be positive")]
    [InlineData("{\"rope_type\": \"linear\", \"factor\": \"2\"}", "rope_scaling.factor", "must be a number")]
    [InlineData("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
        "rope_scaling.low_freq_factor", "missing")]
    [InlineData("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}",
        "rope_scaling.original_max_position_embeddings", "missing")]
    [InlineData("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
        "rope_scaling.high_freq_factor", "must be greater than low_freq_factor")]
    public void BadRopeScaling_NamesTheNestedField(string scaling, string field, string problem)
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"rope_scaling\": null", $"\"rope_scaling\": {scaling}");
        AssertFieldError(json, field, problem);
    }

    [Fact]
    public void UnsupportedActivation_NamesIt()
    {
        string json = Swap(PublishedConfigs.Llama2_7B, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"");
        AssertFieldError(json, "hidden_act", "'gelu'");
    }

    [Fact]
    public void LlamaMlpBias_IsRejected()
    {
        string json = Swap(PublishedConfigs.Llama31_8B, "\"mlp_bias\": false", "\"mlp_bias\": true");
        AssertFieldError(json, "mlp_bias", "not supported");
    }

    [Fact]
    public void Qwen2SlidingWindow_IsRejected()
    {
        string json = Swap(PublishedConfigs.Qwen25_7B, "\"use_sliding_window\": false", "\"use_sliding_window\": true");
        AssertFieldError(json, "use_sliding_window", "max_window_layers");
    }

    private static ModelConfigException AssertFieldError(string json, string field, string problem)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfigReader.Parse(json, Source));
        Assert.Equal(field, e.Field);
        Assert.Equal(Source, e.ConfigSource);
        Assert.Contains($"'{Source}'", e.Message);
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains(problem, e.Message);
        return e;
    }

    /// <summary>Replaces text that must be present, so a typo in a test cannot turn it into a no-op.</summary>
    private static string Swap(string json, string from, string to)
    {
        Assert.Contains(from, json);
        return json.Replace(from, to);
    }
}
