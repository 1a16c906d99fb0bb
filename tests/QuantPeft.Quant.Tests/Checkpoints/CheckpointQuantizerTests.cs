using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Checkpoints;

public class CheckpointQuantizerTests
{
    [Fact]
    public void Nf4DoubleQuantCheckpointHasBitsandbytesNamesAndReadsBack()
    {
        using var model = new TinyModelFolder();
        string output = model.Sibling("nf4");
        var summary = CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Nf4, 64, doubleQuant: true));
        Assert.Equal(2 * 7, summary.QuantizedTensors);

        using var q = QuantizedCheckpoint.Open(output);
        Assert.Equal(CheckpointFormat.Nf4, q.Format);
        Assert.Equal(14, q.QuantizedWeights.Count);
        string p = "model.layers.1.mlp.down_proj.";
        foreach (string suffix in new[] { "weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map", "weight.quant_state.bitsandbytes__nf4" })
            Assert.True(q.Tensors.Contains(p + suffix), $"missing {p + suffix}");
        // down_proj is [64, 96]: 6144 values → 3072 packed bytes in a [3072, 1] uint8 tensor; 96 blocks → uint8 absmax.
        Assert.Equal(new long[] { 3072, 1 }, q.Tensors.GetTensor(p + "weight").Shape);
        Assert.Equal(SafetensorsDType.U8, q.Tensors.GetTensor(p + "weight.absmax").DType);
        using var state = JsonDocument.Parse(Encoding.UTF8.GetString(q.Tensors.ReadBytes(p + "weight.quant_state.bitsandbytes__nf4")));
        Assert.Equal("nf4", state.RootElement.GetProperty("quant_type").GetString());
        Assert.Equal(64, state.RootElement.GetProperty("blocksize").GetInt32());
        Assert.Equal("bfloat16", state.RootElement.GetProperty("dtype").GetString());
        Assert.Equal(256, state.RootElement.GetProperty("nested_blocksize").GetInt32());

        // Unquantized tensors are copied byte for byte.
        byte[] embed = q.Tensors.ReadBytes("model.embed_tokens.weight");
        Assert.Equal(MemoryMarshal.AsBytes(model.Original["model.embed_tokens.weight"].AsSpan()).ToArray(), embed);
        Assert.False(q.Tensors.Contains("lm_head.weight.absmax"));

        // The stored codes are what the codec gives for that weight directly, and they dequantize close to it.
        ushort[] original = model.Original[p + "weight"];
        PackedFourBitTensor direct = FourBitBufferQuantizer.Quantize(original, [64, 96], FourBitType.Nf4, 64, doubleQuant: true);
        Assert.Equal(direct.Packed, q.Tensors.ReadBytes(p + "weight"));
        float[] restored = q.Dequantize(p + "weight");
        double err = 0, energy = 0;
        for (int i = 0; i < restored.Length; i++)
        {
            double x = FloatBits.BFloat16ToSingle(original[i]);
            err += (restored[i] - x) * (restored[i] - x);
            energy += x * x;
        }
        // NF4 on Gaussian weights: relative MSE ≈ 1% (QLoRA); 3% leaves room for 64-element block statistics.
        Assert.InRange(err / energy, 0.001, 0.03);

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "config.json")));
        JsonElement qc = config.RootElement.GetProperty("quantization_config");
        Assert.True(qc.GetProperty("load_in_4bit").GetBoolean());
        Assert.Equal("nf4", qc.GetProperty("bnb_4bit_quant_type").GetString());
        Assert.True(qc.GetProperty("bnb_4bit_use_double_quant").GetBoolean());
        Assert.Equal(4096, config.RootElement.GetProperty("max_position_embeddings").GetInt32());
        Assert.True(File.Exists(Path.Combine(output, "tokenizer.json")));
    }

    [Fact]
    public void Int8RowwiseCheckpointReconstructsWithinHalfAStep()
    {
        using var model = new TinyModelFolder();
        string output = model.Sibling("int8");
        CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Int8));
        using var q = QuantizedCheckpoint.Open(output);
        Assert.Equal(CheckpointFormat.Int8, q.Format);
        string name = "model.layers.0.self_attn.q_proj.weight";
        Assert.Equal(SafetensorsDType.I8, q.Tensors.GetTensor(name).DType);
        float[] scb = q.Tensors.ReadFloat32("model.layers.0.self_attn.q_proj.SCB");
        float[] restored = q.Dequantize(name);
        ushort[] original = model.Original[name];
        for (int i = 0; i < restored.Length; i++)
        {
            float x = FloatBits.BFloat16ToSingle(original[i]);
            float step = scb[i / 64] / 127f;
            Assert.True(Math.Abs(restored[i] - x) <= step / 2 + 1e-7f, $"element {i}: {restored[i]} vs {x}");
        }
    }

    [Fact]
    public void FolderWithoutConfigIsRejectedAndNothingIsWritten()
    {
        using var model = new TinyModelFolder();
        File.Delete(Path.Combine(model.Path, "config.json"));
        string output = model.Sibling("out");
        var e = Assert.Throws<QuantInputException>(() => CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Nf4)));
        Assert.Contains("config.json", e.Message);
        Assert.False(Directory.Exists(output));
    }

    [Theory]
    [InlineData(100)]
    [InlineData(16)]
    [InlineData(8192)]
    public void BlockSizeMustBeAnAllowedPowerOfTwo(int blockSize)
    {
        var e = Assert.Throws<QuantInputException>(() => new QuantizeOptions(CheckpointFormat.Nf4, blockSize));
        Assert.Contains("--blocksize " + blockSize, e.Message);
    }

    [Fact]
    public void UnknownFormatNamesTheAcceptedOnes()
    {
        var e = Assert.Throws<QuantInputException>(() => CheckpointFormats.Parse("q3"));
        Assert.Contains("nf4, fp4, int8", e.Message);
    }

    [Fact]
    public void NonMatrixWeightIsRejectedBeforeAnythingIsWritten()
    {
        using var model = new TinyModelFolder(t => t.Name == "model.layers.1.mlp.up_proj.weight" ? [96 * 64] : t.Shape);
        string output = model.Sibling("out");
        var e = Assert.Throws<QuantInputException>(() => CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Fp4)));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);
        Assert.Contains("2-D", e.Message);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void FailureHalfwayLeavesNoOutputAndNoTemporaryFolder()
    {
        using var model = new TinyModelFolder(poisonTensor: "model.layers.1.self_attn.v_proj.weight");
        string output = model.Sibling("out");
        Assert.ThrowsAny<QuantInputException>(() => CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Nf4)));
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(model.Path)!, Path.GetFileName(model.Path) + "-out*"));
    }

    [Fact]
    public void NonEmptyOutputFolderIsRefused()
    {
        using var model = new TinyModelFolder();
        string output = model.Sibling("busy");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "keep.txt"), "mine");
        Assert.Contains("not an empty folder", Assert.Throws<QuantInputException>(() => CheckpointQuantizer.Run(model.Path, output, new QuantizeOptions(CheckpointFormat.Nf4))).Message);
        Assert.True(File.Exists(Path.Combine(output, "keep.txt")));
    }
}
