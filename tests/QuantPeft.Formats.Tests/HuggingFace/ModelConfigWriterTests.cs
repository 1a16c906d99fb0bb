using System.Text.Json;
using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Formats.Tests.HuggingFace;

public class ModelConfigWriterTests
{
    public static TheoryData<string> AllPublished() =>
    [
        nameof(PublishedConfigs.Llama2_7B), nameof(PublishedConfigs.Llama2_13B), nameof(PublishedConfigs.Llama2_70B),
        nameof(PublishedConfigs.Llama31_8B), nameof(PublishedConfigs.Llama31_70B), nameof(PublishedConfigs.Mistral7B_v01),
        nameof(PublishedConfigs.Qwen25_05B), nameof(PublishedConfigs.Qwen25_7B), nameof(PublishedConfigs.TinyLlama_11B),
    ];

    [Theory]
    [MemberData(nameof(AllPublished))]
    public void RoundTrip_PublishedConfigs(string name)
    {
        var spec = ModelConfigReader.Parse(ModelConfigReaderTests.Published(name));
        string json = ModelConfigWriter.ToJson(spec);
        Assert.Equal(spec, ModelConfigReader.Parse(json));
    }

    [Theory]
    [MemberData(nameof(AllPublished))]
    public void Written_ArchitectureFields_EqualThePublishedOnes(string name)
    {
        // Every field transformers reads to build the architecture must come out with the published value.
        string published = ModelConfigReaderTests.Published(name);
        string written = ModelConfigWriter.ToJson(ModelConfigReader.Parse(published), "bfloat16");
        using var a = JsonDocument.Parse(published);
        using var b = JsonDocument.Parse(written);
        string[] keys =
        [
            "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "vocab_size", "tie_word_embeddings", "max_position_embeddings", "rms_norm_eps",
            "rope_theta", "rope_scaling", "hidden_act", "architectures", "sliding_window",
        ];
        foreach (string key in keys)
        {
            if (!a.RootElement.TryGetProperty(key, out var expected))
                continue;
            if (key == "sliding_window" && a.RootElement.GetProperty("model_type").GetString() == "qwen2")
                continue; // ignored by qwen2 while use_sliding_window is false
            Assert.True(b.RootElement.TryGetProperty(key, out var actual), $"{name}: written config lacks '{key}'");
            Assert.True(JsonElement.DeepEquals(expected, actual) || SameNumber(expected, actual),
                $"{name}: '{key}' published {expected.GetRawText()}, written {actual.GetRawText()}");
        }
        Assert.Equal("bfloat16", b.RootElement.GetProperty("torch_dtype").GetString());
    }

    [Fact]
    public void Output_HasSortedKeys_AndFloatsKeepTheirPoint()
    {
        string json = ModelConfigWriter.ToJson(ModelConfigReader.Parse(PublishedConfigs.Llama31_8B));
        using var doc = JsonDocument.Parse(json);
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Contains("\"factor\": 8.0", json);
        Assert.Contains("\"rope_theta\": 500000.0", json);
        Assert.Contains("\"rms_norm_eps\": 1e-05", json);
        Assert.EndsWith("}\n", json);
    }

    [Fact]
    public void RoundTrip_HandBuiltSpecs()
    {
        ModelSpec[] specs =
        [
            new() { ModelType = "llama", NumLayers = 3, HiddenSize = 96, IntermediateSize = 200, NumHeads = 6, NumKvHeads = 2,
                    VocabSize = 1000, HeadDimOverride = 24, AttentionBias = true, OutputProjectionBias = true,
                    RopeScaling = new RopeScaling("dynamic", 2.5, OriginalMaxPositionEmbeddings: 1024), RmsNormEps = 3.3e-7,
                    RopeTheta = 123456.789, MaxPositionEmbeddings = 4096 },
            new() { ModelType = "llama", NumLayers = 1, HiddenSize = 64, IntermediateSize = 64, NumHeads = 4, NumKvHeads = 4,
                    VocabSize = 10, RopeScaling = new RopeScaling("linear", 4.0, OriginalMaxPositionEmbeddings: 4096) },
            new() { ModelType = "mistral", NumLayers = 2, HiddenSize = 64, IntermediateSize = 128, NumHeads = 4, NumKvHeads = 1,
                    VocabSize = 50, SlidingWindow = null, TieWordEmbeddings = true },
            new() { ModelType = "qwen2", NumLayers = 2, HiddenSize = 64, IntermediateSize = 128, NumHeads = 4, NumKvHeads = 2,
                    VocabSize = 50, AttentionBias = true, MaxPositionEmbeddings = 32768 },
        ];
        foreach (var spec in specs)
            Assert.Equal(spec, ModelConfigReader.Parse(ModelConfigWriter.ToJson(spec)));
    }

    [Fact]
    public void InexpressibleSpecs_AreRejected()
    {
        var qwenWithoutBias = new ModelSpec
        {
            ModelType = "qwen2", NumLayers = 2, HiddenSize = 64, IntermediateSize = 128, NumHeads = 4, NumKvHeads = 2, VocabSize = 50,
        };
        var e = Assert.Throws<ArgumentException>(() => ModelConfigWriter.ToJson(qwenWithoutBias));
        Assert.Contains("qwen2", e.Message);

        var llamaHalfBias = qwenWithoutBias with { ModelType = "llama", AttentionBias = true, OutputProjectionBias = false };
        Assert.Throws<ArgumentException>(() => ModelConfigWriter.ToJson(llamaHalfBias));

        var badHeads = qwenWithoutBias with { ModelType = "llama", NumKvHeads = 3 };
        var bad = Assert.Throws<ArgumentException>(() => ModelConfigWriter.ToJson(badHeads));
        Assert.Contains("num_key_value_heads", bad.Message);

        var unknown = qwenWithoutBias with { ModelType = "gemma" };
        Assert.Throws<ArgumentException>(() => ModelConfigWriter.ToJson(unknown));
    }

    [Fact]
    public void WriteToFolder_CreatesReadableModelFolder_WithoutLeftovers()
    {
        string root = Directory.CreateTempSubdirectory("qp-cfg-").FullName;
        try
        {
            string folder = Path.Combine(root, "qwen2.5-0.5b");
            var spec = ModelConfigReader.Parse(PublishedConfigs.Qwen25_05B);
            string path = ModelConfigWriter.WriteToFolder(spec, folder, "bfloat16");
            Assert.Equal(Path.Combine(folder, "config.json"), path);
            Assert.Equal(spec, ModelConfigReader.Read(folder));
            // Overwriting an existing config replaces it whole.
            var other = ModelConfigReader.Parse(PublishedConfigs.TinyLlama_11B);
            ModelConfigWriter.WriteToFolder(other, folder);
            Assert.Equal(other, ModelConfigReader.Read(folder));
            Assert.Equal(["config.json"], Directory.GetFiles(folder).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void WriteToFolder_FailureLeavesExistingFileUntouched()
    {
        string folder = Directory.CreateTempSubdirectory("qp-cfg-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), PublishedConfigs.Llama2_7B);
            var invalid = new ModelSpec
            {
                ModelType = "llama", NumLayers = 0, HiddenSize = 64, IntermediateSize = 128, NumHeads = 4, NumKvHeads = 2, VocabSize = 50,
            };
            Assert.Throws<ArgumentException>(() => ModelConfigWriter.WriteToFolder(invalid, folder));
            Assert.Equal(PublishedConfigs.Llama2_7B, File.ReadAllText(Path.Combine(folder, "config.json")));
            Assert.Single(Directory.GetFiles(folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static bool SameNumber(JsonElement a, JsonElement b) =>
        a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number && a.GetDouble() == b.GetDouble();
}
