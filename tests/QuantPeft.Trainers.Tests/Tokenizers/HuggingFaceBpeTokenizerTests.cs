using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Tokenizers;

public class HuggingFaceBpeTokenizerTests
{
    private static HuggingFaceBpeTokenizer LoadFixture(TempDir dir) =>
        HuggingFaceBpeTokenizer.Load(dir.Write("tokenizer.json", TinyBpeFixture.Json));

    [Fact]
    public void EncodesToHandDerivedIds()
    {
        using var dir = new TempDir();
        var tok = LoadFixture(dir);
        // "hello" -> h e l l o -> he l l o -> he ll o -> he llo -> hello = [12].
        // " world" -> Ġ w o r l d -> Ġw o r l d -> Ġw or l d -> Ġwor l d = [15, 3, 8].
        Assert.Equal([12, 15, 3, 8], tok.Encode("hello world"));
        Assert.Equal("hello world", tok.Decode([12, 15, 3, 8]));
    }

    [Fact]
    public void AddedTokensAreMatchedInTextAndSpecialsAreSkippedOnDecode()
    {
        using var dir = new TempDir();
        var tok = LoadFixture(dir);
        // "world" without a leading space: w o r l d -> w or l d = [6, 14, 3, 8].
        Assert.Equal([12, 16, 6, 14, 3, 8, 0], tok.Encode("hello<sep>world<|endoftext|>"));
        Assert.Equal("hello<sep>world", tok.Decode([12, 16, 6, 14, 3, 8, 0]));
    }

    [Fact]
    public void SplitRegexSequenceAsInLlama3GivesTheSameIds()
    {
        using var dir = new TempDir();
        string json = TinyBpeFixture.Json.Replace(
            "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}",
            "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [" +
            "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}," +
            "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}");
        Assert.NotEqual(TinyBpeFixture.Json, json);
        var tok = HuggingFaceBpeTokenizer.Load(dir.Write("tokenizer.json", json));
        Assert.Equal([12, 15, 3, 8], tok.Encode("hello world"));
    }

    [Fact]
    public void AddPrefixSpaceEncodesALeadingSpace()
    {
        using var dir = new TempDir();
        string json = TinyBpeFixture.Json.Replace("\"add_prefix_space\": false", "\"add_prefix_space\": true");
        var tok = HuggingFaceBpeTokenizer.Load(dir.Write("tokenizer.json", json));
        // " hello" -> Ġ h e l l o -> Ġ hello (no merge joins Ġ and hello) = [5, 12].
        Assert.Equal([5, 12], tok.Encode("hello"));
    }

    [Fact]
    public void SpecialIdsComeFromWellKnownNamesWithoutConfig()
    {
        using var dir = new TempDir();
        var tok = LoadFixture(dir);
        Assert.Equal(17, tok.VocabSize);
        Assert.Null(tok.BosId);
        Assert.Equal(0, tok.EosId);
        Assert.Null(tok.PadId);
    }

    [Fact]
    public void SpecialIdsComeFromTokenizerConfigWhenPresent()
    {
        using var dir = new TempDir();
        dir.Write("tokenizer_config.json", """{"bos_token": {"content": "<sep>"}, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}""");
        var tok = LoadFixture(dir);
        Assert.Equal(16, tok.BosId);
        Assert.Equal(0, tok.EosId);
        Assert.Equal(0, tok.PadId);
        Assert.Equal("hello", tok.Decode([16, 12, 0]));
    }

    [Fact]
    public void ConfigNamingAnUnknownTokenIsAnError()
    {
        using var dir = new TempDir();
        dir.Write("tokenizer_config.json", """{"eos_token": "</s>"}""");
        var e = Assert.Throws<TokenizerLoadException>(() => LoadFixture(dir));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("'</s>'", e.Message);
    }

    [Fact]
    public void MissingFileNamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        var e = Assert.Throws<TokenizerLoadException>(() => HuggingFaceBpeTokenizer.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Theory]
    [InlineData("{\"model\": {", "invalid JSON")]
    [InlineData("[1, 2]", "top level")]
    [InlineData("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "\"Unigram\"")]
    [InlineData("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}", "model.vocab")]
    [InlineData("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"abc\"]}}", "model.merges[0]")]
    [InlineData("{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "unsupported pre-tokenizer")]
    public void MalformedFileNamesTheFileAndTheProblem(string json, string expected)
    {
        using var dir = new TempDir();
        string path = dir.Write("tokenizer.json", json);
        var e = Assert.Throws<TokenizerLoadException>(() => HuggingFaceBpeTokenizer.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LoaderPrefersByteLevelTokenizerJsonAndReportsEmptyFolder()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromModelFolder(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
        dir.Write("tokenizer.json", TinyBpeFixture.Json);
        Assert.IsType<HuggingFaceBpeTokenizer>(TokenizerLoader.FromModelFolder(dir.Path));
    }
}
