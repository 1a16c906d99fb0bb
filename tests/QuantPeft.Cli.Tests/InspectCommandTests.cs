using System.Text;
using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Tests;

public class InspectCommandTests
{
    // Llama-2-7B as published (its Hugging Face config.json); 6,738,415,616 parameters in the HF checkpoint.
    private static readonly ModelSpec Llama2_7B = new()
    {
        ModelType = "llama", NumLayers = 32, HiddenSize = 4096, IntermediateSize = 11008,
        NumHeads = 32, NumKvHeads = 32, VocabSize = 32000,
    };

    [Fact]
    public void ShardedSparseLlama2_7BReportsExactParameterCountFromHeadersOnly()
    {
        using var tmp = new TempFolder();
        string dir = tmp.Path;
        // Real headers, sparse zero data: 13.5 GB of F16 on disk in holes, in shards of at most 5 GB.
        SafetensorsShardedWriter.Write(dir, Llama2_7B.Tensors().Select(t => SafetensorsTensorEntry.Zeros(t.Name, SafetensorsDType.F16, t.Shape)), 5_000_000_000L);
        ModelConfigWriter.WriteToFolder(Llama2_7B, dir);

        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var (exit, stdout, stderr) = CliHarness.Run("inspect", dir, "--json");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.Equal(6_738_415_616L, root.GetProperty("parameters").GetInt64());
        Assert.Equal(2 * 6_738_415_616L, root.GetProperty("bytes").GetInt64());
        Assert.Equal(291, root.GetProperty("tensor_count").GetInt32());
        Assert.Equal(3, root.GetProperty("files").GetArrayLength());
        Assert.Equal(6_738_415_616L, root.GetProperty("model").GetProperty("parameters_from_config").GetInt64());
        Assert.Equal("F16", root.GetProperty("dtypes")[0].GetProperty("dtype").GetString());
        // Nothing but headers was read: a 13 GB checkpoint costs a few MB of allocations.
        Assert.True(allocated < 64L << 20, $"inspect allocated {allocated:N0} bytes");
    }

    [Fact]
    public void TableOutputShowsTotalsAndArchitecture()
    {
        using var tmp = new TempFolder();
        string dir = tmp.Path;
        var spec = new ModelSpec { ModelType = "qwen2", NumLayers = 1, HiddenSize = 8, IntermediateSize = 16, NumHeads = 2, NumKvHeads = 1, VocabSize = 10, AttentionBias = true, TieWordEmbeddings = true };
        SafetensorsWriter.WriteFile(Path.Combine(dir, "model.safetensors"), spec.Tensors().Select(t => SafetensorsTensorEntry.Zeros(t.Name, SafetensorsDType.BF16, t.Shape)));
        ModelConfigWriter.WriteToFolder(spec, dir);
        var (exit, stdout, stderr) = CliHarness.Run("inspect", Path.Combine(dir, "model.safetensors"));
        Assert.True(exit == 0, stderr);
        Assert.Contains("qwen2", stdout);
        Assert.Contains("model.layers.0.self_attn.q_proj.bias", stdout);
        Assert.Contains(spec.ParameterCount.ToString("N0"), stdout);
    }

    public static TheoryData<string, byte[], string> Malformed()
    {
        static byte[] File(string header, int dataBytes)
        {
            byte[] h = Encoding.UTF8.GetBytes(header);
            var bytes = new byte[8 + h.Length + dataBytes];
            BitConverter.GetBytes((ulong)h.Length).CopyTo(bytes, 0);
            h.CopyTo(bytes, 8);
            return bytes;
        }
        return new TheoryData<string, byte[], string>
        {
            { "truncated", new byte[] { 1, 2, 3 } , "file is 3 bytes" },
            { "header past end", BitConverter.GetBytes(1000UL) , "runs past the end" },
            { "invalid json", File("{\"a\": ", 0) , "not valid JSON" },
            { "json array", File("[1, 2]", 0) , "must be an object" },
            { "unknown dtype", File("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2) , "dtype 'Q7' is not one of" },
            { "overlap", File("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6) , "(overlap)" },
            { "size mismatch", File("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8) , "F32 [3] needs 12" },
            { "duplicate", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2) , "appears twice" },
            { "empty", [] , "file is 0 bytes" },
            { "huge header length", BitConverter.GetBytes(200_000_000UL).Concat(new byte[16]).ToArray() , "exceeds the limit" },
            { "invalid utf8", BitConverter.GetBytes(7UL).Concat(new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1' }).ToArray() , "not valid UTF-8" },
            { "reversed offsets", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4) , "end before they begin" },
            { "gap", File("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}", 5) , "(gap)" },
            { "past end of file", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 4) , "end past the data section" },
            { "negative shape", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[-2],\"data_offsets\":[0,2]}}", 2) , "dimension -2" },
            { "overflowing shape", File("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8) , "overflows 64 bits" },
            { "missing dtype", File("{\"w\":{\"shape\":[2],\"data_offsets\":[0,2]}}", 2) , "no 'dtype' field" },
            { "missing offsets", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[2]}}", 2) , "no 'data_offsets' field" },
            { "trailing bytes", File("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 5) , "data section holds 5 bytes" },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedFilesExitWithOneNamedLine(string label, byte[] content, string expected)
    {
        using var tmp = new TempFolder();
        string path = Path.Combine(tmp.Path, "bad.safetensors");
        File.WriteAllBytes(path, content);
        var (exit, stdout, stderr) = CliHarness.Run("inspect", path);
        Assert.True(exit == 1, $"{label}: exit {exit}, stderr {stderr}");
        Assert.Equal("", stdout);
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains("bad.safetensors", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void MissingPathIsAUserError()
    {
        var (exit, _, stderr) = CliHarness.Run("inspect", "/nonexistent/model");
        Assert.Equal(1, exit);
        Assert.Contains("/nonexistent/model", stderr);
    }

    [Fact]
    public void UnexpectedExceptionsAreInternalErrors()
    {
        var err = new StringWriter();
        int exit = CliRunner.Run(() => throw new InvalidOperationException("boom"), err);
        Assert.Equal(CliRunner.InternalError, exit);
        Assert.Contains("boom", err.ToString());
    }
}
