using QuantPeft.Formats.HuggingFace;
using System.Runtime.InteropServices;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Tests;

public class QuantizeCommandTests
{
    private static void WriteModel(string dir)
    {
        var spec = new ModelSpec { ModelType = "llama", NumLayers = 1, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2, VocabSize = 16 };
        var rng = new Random(5);
        SafetensorsWriter.WriteFile(Path.Combine(dir, "model.safetensors"), spec.Tensors().Select(t =>
        {
            var v = new float[t.ElementCount];
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() - 0.5);
            return SafetensorsTensorEntry.FromBytes(t.Name, SafetensorsDType.F32, t.Shape, MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
        }));
        ModelConfigWriter.WriteToFolder(spec, dir);
    }

    [Fact]
    public void QuantizeThenInspectShowsPackedWeights()
    {
        using var tmp = new TempFolder();
        string model = Path.Combine(tmp.Path, "model"), output = Path.Combine(tmp.Path, "nf4");
        Directory.CreateDirectory(model);
        WriteModel(model);
        var (exit, _, stderr) = CliHarness.Run("quantize", model, "--format", "nf4", "--double-quant", "-o", output);
        Assert.True(exit == 0, stderr);
        var (exit2, stdout, _) = CliHarness.Run("inspect", output, "--json");
        Assert.Equal(0, exit2);
        Assert.Contains("model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", stdout);
    }

    [Theory]
    [InlineData("--format", "q3", "--format 'q3'")]
    [InlineData("--blocksize", "100", "--blocksize 100")]
    public void BadFlagsExitOneNamingTheFlagAndWriteNothing(string flag, string value, string expected)
    {
        using var tmp = new TempFolder();
        string model = Path.Combine(tmp.Path, "model"), output = Path.Combine(tmp.Path, "out");
        Directory.CreateDirectory(model);
        WriteModel(model);
        string[] args = flag == "--format"
            ? ["quantize", model, flag, value, "-o", output]
            : ["quantize", model, "--format", "nf4", flag, value, "-o", output];
        var (exit, _, stderr) = CliHarness.Run(args);
        Assert.Equal(1, exit);
        Assert.Contains(expected, stderr);
        Assert.False(Directory.Exists(output));
    }

    // Projections of 128×128 and 256×128: multiples of B0·B1 = 64·256, so every LQ-LoRA candidate applies.
    private static void WriteLqModel(string dir, bool config = true)
    {
        var spec = new ModelSpec { ModelType = "llama", NumLayers = 1, HiddenSize = 128, IntermediateSize = 256, NumHeads = 4, NumKvHeads = 4, VocabSize = 16 };
        var rng = new Random(6);
        SafetensorsWriter.WriteFile(Path.Combine(dir, "model.safetensors"), spec.Tensors().Select(t =>
        {
            var v = new float[t.ElementCount];
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() - 0.5);
            return SafetensorsTensorEntry.FromBytes(t.Name, SafetensorsDType.F32, t.Shape, MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
        }));
        if (config) ModelConfigWriter.WriteToFolder(spec, dir);
    }

    [Fact]
    public void LqLoraQuantizeWritesTheBudgetAndPerMatrixChoices()
    {
        using var tmp = new TempFolder();
        string model = Path.Combine(tmp.Path, "model"), output = Path.Combine(tmp.Path, "lq");
        Directory.CreateDirectory(model);
        WriteLqModel(model);
        var (exit, stdout, stderr) = CliHarness.Run("quantize", model, "--method", "lq-lora", "--bits", "2.75", "--rank", "4", "--iterations", "4", "-o", output);
        Assert.True(exit == 0, stderr);
        Assert.Contains("lq-lora: 7 weights", stdout);
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "config.json")));
        var q = config.RootElement.GetProperty("quantization_config");
        Assert.Equal("lq-lora", q.GetProperty("quant_method").GetString());
        Assert.Equal(2.75, q.GetProperty("bits").GetDouble());
        Assert.Equal(4, q.GetProperty("rank").GetInt32());
        Assert.True(q.GetProperty("average_bits").GetDouble() <= 2.75);
        var matrices = q.GetProperty("matrices");
        Assert.Equal(7, matrices.EnumerateObject().Count());
        var up = matrices.GetProperty("model.layers.0.mlp.up_proj.weight");
        Assert.Contains(up.GetProperty("bits").GetInt32(), new[] { 2, 3, 4, 8 });
        using var ckpt = SafetensorsCheckpoint.Open(output);
        Assert.Equal(new long[] { 256, 4 }, ckpt.GetTensor("model.layers.0.mlp.up_proj.lq_lora.L1").Shape);
        Assert.Equal(SafetensorsDType.BF16, ckpt.GetTensor("model.layers.0.mlp.up_proj.lq_lora.L2").DType);
        Assert.Equal(SafetensorsDType.F32, ckpt.GetTensor("model.embed_tokens.weight").DType);
    }

    [Theory]
    [InlineData("--bits", "1.5", "--bits 1.5")]
    [InlineData("--bits", "9", "--bits 9")]
    [InlineData("--rank", "0", "--rank 0")]
    [InlineData("--rank", "-3", "--rank -3")]
    [InlineData("--rank", "200", "--rank 200")]
    [InlineData("--blocksize", "100", "--blocksize 100")]
    [InlineData("--format", "nf4", "--format and --method")]
    public void LqLoraBadFlagsExitOneNamingTheFlagAndWriteNothing(string flag, string value, string expected)
    {
        using var tmp = new TempFolder();
        string model = Path.Combine(tmp.Path, "model"), output = Path.Combine(tmp.Path, "out");
        Directory.CreateDirectory(model);
        WriteLqModel(model);
        var args = new Dictionary<string, string> { ["--bits"] = "3", ["--rank"] = "4" };
        args[flag] = value;
        string[] argv = ["quantize", model, "--method", "lq-lora", .. args.SelectMany(kv => new[] { kv.Key, kv.Value }), "--iterations", "2", "-o", output];
        var (exit, _, stderr) = CliHarness.Run(argv);
        Assert.Equal(1, exit);
        Assert.Contains(expected, stderr);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(tmp.Path, "out*"));
    }

    [Fact]
    public void LqLoraModelFolderWithoutConfigExitsOneAndWritesNothing()
    {
        using var tmp = new TempFolder();
        string model = Path.Combine(tmp.Path, "model"), output = Path.Combine(tmp.Path, "out");
        Directory.CreateDirectory(model);
        WriteLqModel(model, config: false);
        var (exit, _, stderr) = CliHarness.Run("quantize", model, "--method", "lq-lora", "--bits", "3", "--rank", "4", "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("config.json", stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void NeitherFormatNorMethodExitsOne()
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run("quantize", tmp.Path, "-o", Path.Combine(tmp.Path, "out"));
        Assert.Equal(1, exit);
        Assert.Contains("--format or --method", stderr);
    }

    [Fact]
    public void ModelFolderWithoutConfigExitsOne()
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run("quantize", tmp.Path, "--format", "nf4", "-o", Path.Combine(tmp.Path, "out"));
        Assert.Equal(1, exit);
        Assert.Contains("config.json", stderr);
    }
}

public class PlanFromConfigTests
{
    [Fact]
    public void PlanReadsAModelFolderAndAConfigFile()
    {
        using var tmp = new TempFolder();
        // TinyLlama-1.1B's published architecture, written as config.json.
        var spec = new ModelSpec { ModelType = "llama", NumLayers = 22, HiddenSize = 2048, IntermediateSize = 5632, NumHeads = 32, NumKvHeads = 4, VocabSize = 32000, MaxPositionEmbeddings = 2048 };
        string config = ModelConfigWriter.WriteToFolder(spec, tmp.Path);
        var (exitDir, outDir, errDir) = CliHarness.Run("plan", tmp.Path, "--method", "lora", "--weights", "nf4", "--double-quant", "on", "--rank", "16", "--targets", "all-linear",
            "--optimizer", "adamw", "--layerwise", "off", "--checkpointing", "on", "--attention", "fused", "--batch", "1", "--seq", "512", "--format", "json");
        Assert.True(exitDir == 0, errDir);
        var (exitFile, outFile, _) = CliHarness.Run("plan", config, "--method", "lora", "--weights", "nf4", "--double-quant", "on", "--rank", "16", "--targets", "all-linear",
            "--optimizer", "adamw", "--layerwise", "off", "--checkpointing", "on", "--attention", "fused", "--batch", "1", "--seq", "512", "--format", "json");
        Assert.Equal(0, exitFile);
        // Same plan either way (only the model's path in the header differs).
        Assert.Equal(outDir[outDir.IndexOf("\"candidates\"", StringComparison.Ordinal)..], outFile[outFile.IndexOf("\"candidates\"", StringComparison.Ordinal)..]);
        Assert.Contains("\"candidates\"", outDir);
    }
}
