using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>
/// A bitsandbytes 4-bit folder of each newer family loads under the family's own tensor names: q/k norms, Gemma's four
/// norms per layer and Phi's fused <c>qkv_proj</c>/<c>gate_up_proj</c> stay unquantized or quantized exactly as
/// bitsandbytes leaves them, and the loaded model computes the logits of a dense model holding the host codec's decode
/// of each stored weight.
/// </summary>
public class FamilyPrequantizedLoadTests
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama-3.2")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    [InlineData("mistral-window")]
    public void AnNf4FolderOfTheFamily_GivesTheLogitsOfItsDecodedWeights(string family)
    {
        using var dir = new TempDir();
        string dense = FamilyParityTests.Folder(family);
        string stored = dir.File("nf4");
        CheckpointQuantizer.Run(dense, stored, new QuantizeOptions(CheckpointFormat.Nf4, 64, doubleQuant: true));

        var folder = PrequantizedFolder.Read(stored)!;
        Assert.Equal(WeightFormat.Nf4, folder.Weights);
        Assert.True(folder.DoubleQuant);
        var spec = ModelFolder.ReadSpec(stored);
        Assert.Equal(ModelConfigReader.Read(dense).ModelType, spec.ModelType);

        // The reference: every tensor as the dense folder holds it, except the quantized projections, which take the
        // values the host codec decodes from the stored codes.
        var reference = new DictionarySource("decoded");
        int projectionsPerLayer = spec.FusedProjections ? 4 : 7;
        using (var checkpoint = QuantizedCheckpoint.Open(stored))
        using (var denseSource = new SafetensorsModelSource(Path.Combine(dense, "model.safetensors")))
        {
            Assert.Equal(spec.NumLayers * projectionsPerLayer, checkpoint.QuantizedWeights.Count);
            Assert.All(checkpoint.QuantizedWeights, n => Assert.Matches(@"^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$", n));
            foreach (var t in spec.Tensors())
            {
                if (checkpoint.QuantizedWeights.Contains(t.Name))
                {
                    reference.Add(t.Name, t.Shape, checkpoint.Dequantize(t.Name));
                    continue;
                }
                using var value = denseSource.Get(t.Name);
                using var f32 = value.to(ScalarType.Float32).contiguous();
                reference.Add(t.Name, t.Shape, f32.data<float>().ToArray());
            }
        }

        using var loaded = ModelFolder.Load(stored, spec, new DecoderOptions
        {
            ComputeDType = ScalarType.Float32,
            LinearFactory = folder.Factory(4, 4, ScalarType.Float32),
        });
        Assert.Equal(spec.NumLayers * projectionsPerLayer, loaded.named_modules().Count(m => m.module is QuantizedBaseLinear));
        using var decoded = TinyModels.Build(spec, reference);
        var expected = FamilyParityTests.Expected.Read(family);
        using var ids = FamilyParityTests.Ids(expected.Ids);
        using var a = loaded.call(ids);
        using var b = decoded.call(ids);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5), $"{family}: max diff {(a - b).abs().max().item<float>()}");
        // Guard: 4-bit codes are far from the dense weights, so the comparison above could not pass by loading those.
        using var original = FamilyParityTests.Load(spec, AttentionImplementation.Fused, family);
        using var c = original.call(ids);
        Assert.False(a.allclose(c, rtol: 1e-3, atol: 1e-3), $"{family}: the NF4 model computes the dense logits");
    }
}
