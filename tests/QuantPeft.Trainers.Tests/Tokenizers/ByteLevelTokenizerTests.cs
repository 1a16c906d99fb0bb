using System.Text;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Tokenizers;

public class ByteLevelTokenizerTests
{
    private static readonly ByteLevelTokenizer Tok = ByteLevelTokenizer.Instance;

    [Theory]
    [InlineData("")]
    [InlineData("hello, world")]
    [InlineData("héllo — ünïcödé")]
    [InlineData("日本語のテキスト")]
    [InlineData("emoji 😀👍🏽 and ZWJ 👨‍👩‍👧")]
    [InlineData("tabs\tand\nnewlines\r\n and \0 nul")]
    public void RoundTripsAnyWellFormedString(string text)
    {
        int[] ids = Tok.Encode(text);
        Assert.Equal(Encoding.UTF8.GetByteCount(text), ids.Length);
        Assert.All(ids, id => Assert.InRange(id, 0, 255));
        Assert.Equal(text, Tok.Decode(ids));
    }

    [Fact]
    public void EmojiIsItsFourUtf8Bytes()
    {
        // U+1F600 GRINNING FACE is F0 9F 98 80 in UTF-8.
        Assert.Equal([0xF0, 0x9F, 0x98, 0x80], Tok.Encode("😀"));
        Assert.Equal([(int)'A'], Tok.Encode("A"));
    }

    [Fact]
    public void LoneSurrogateEncodesAsReplacementCharacter()
    {
        Assert.Equal([0xEF, 0xBF, 0xBD], Tok.Encode("\uD800"));
    }

    [Fact]
    public void InvalidUtf8DecodesWithReplacementButBytesStayExact()
    {
        // 0xFF never occurs in UTF-8; C3 alone is a truncated two-byte sequence.
        int[] ids = [0xFF, 'a', 0xC3];
        Assert.Equal("\uFFFDa\uFFFD", Tok.Decode(ids));
        Assert.Equal(new byte[] { 0xFF, (byte)'a', 0xC3 }, ByteLevelTokenizer.DecodeBytes(ids));
    }

    [Fact]
    public void SpecialsAreOutsideTheByteRangeAndSkippedOnDecode()
    {
        Assert.Equal(259, Tok.VocabSize);
        Assert.Equal(256, Tok.BosId);
        Assert.Equal(257, Tok.EosId);
        Assert.Equal(258, Tok.PadId);
        Assert.Equal("hi", Tok.Decode([256, 'h', 258, 'i', 257]));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(259)]
    public void OutOfRangeIdThrows(int id)
    {
        Assert.Throws<ArgumentOutOfRangeException>("ids", () => Tok.Decode([id]));
    }
}
