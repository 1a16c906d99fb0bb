using System.Runtime.InteropServices;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Writes a model folder of a given architecture with deterministic pseudo-random bf16 weights
/// (N(0, 0.02²)-like, from a per-tensor xorshift seed), streaming tensor by tensor, for end-to-end
/// benchmarks of quantization and loading. <c>perf synth-checkpoint layers hidden intermediate heads kvheads vocab DIR</c>.
/// </summary>
internal static class SyntheticCheckpoint
{
    public static int Run(string[] args)
    {
        if (args.Length != 8) { Console.Error.WriteLine("usage: synth-checkpoint LAYERS HIDDEN INTERMEDIATE HEADS KV_HEADS VOCAB DIR"); return 1; }
        var spec = new ModelSpec
        {
            ModelType = "llama", NumLayers = int.Parse(args[1]), HiddenSize = int.Parse(args[2]), IntermediateSize = int.Parse(args[3]),
            NumHeads = int.Parse(args[4]), NumKvHeads = int.Parse(args[5]), VocabSize = int.Parse(args[6]),
        };
        string dir = args[7];
        Directory.CreateDirectory(dir);
        var entries = spec.Tensors().Select((t, i) => SafetensorsTensorEntry.FromCallback(t.Name, SafetensorsDType.BF16, t.Shape, s => Fill(s, t.ElementCount, (ulong)i + 1)));
        SafetensorsShardedWriter.Write(dir, entries, 2_000_000_000L);
        ModelConfigWriter.WriteToFolder(spec, dir, "bfloat16");
        Console.WriteLine($"{spec.ParameterCount:N0} parameters written to {dir}");
        return 0;
    }

    private static void Fill(Stream s, long count, ulong seed)
    {
        ulong x = seed * 0x9E3779B97F4A7C15UL | 1;
        var buffer = new ushort[1 << 20];
        for (long done = 0; done < count; done += buffer.Length)
        {
            int n = (int)Math.Min(buffer.Length, count - done);
            for (int i = 0; i < n; i++)
            {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                // Sum of four uniforms: a cheap bell-shaped value with σ ≈ 0.02.
                double u = ((x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48)) / 65536.0 - 2.0;
                float v = (float)(u * 0.0346);
                buffer[i] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
            }
            s.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
        }
    }
}
