using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Tests.Data;

/// <summary>Alpaca and ShareGPT records, and field names mapped for files whose columns are named differently.</summary>
public class RecordShapeTests
{
    [Fact]
    public void AlpacaBecomesAConversationWithTheInputAfterABlankLine()
    {
        using var dir = new TempDir();
        string path = dir.Write("a.jsonl",
            "{\"instruction\": \"Add\", \"input\": \"2 and 3\", \"output\": \"5\"}\n" +
            "{\"instruction\": \"Greet\", \"input\": \"\", \"output\": \"Hi\", \"system\": \"Be kind\"}\n");
        var r = JsonlDatasetReader.Read(path);
        Assert.Equal([new ChatMessage("user", "Add\n\n2 and 3"), new ChatMessage("assistant", "5")], r[0].Messages!);
        Assert.Equal([new ChatMessage("system", "Be kind"), new ChatMessage("user", "Greet"), new ChatMessage("assistant", "Hi")], r[1].Messages!);
        Assert.Equal(2, r[1].Line);
    }

    [Fact]
    public void ShareGptMapsHumanGptSystemToRoles()
    {
        using var dir = new TempDir();
        string path = dir.Write("s.jsonl",
            "{\"conversations\": [{\"from\": \"system\", \"value\": \"s\"}, {\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}\n");
        Assert.Equal([new ChatMessage("system", "s"), new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo")],
            Assert.Single(JsonlDatasetReader.Read(path)).Messages!);
    }

    [Theory]
    [InlineData("{\"instruction\": \"Add\", \"input\": \"2\"}", "missing field 'output' (an alpaca record needs the answer to train on)")]
    [InlineData("{\"output\": \"5\"}", "missing field 'instruction' (an alpaca record with 'output' needs one)")]
    [InlineData("{\"instruction\": \"Add\", \"output\": 5}", "field 'output': expected a string, found the number 5")]
    [InlineData("{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}", "field 'conversations[0].from': expected human, gpt or system, found \"bot\"")]
    [InlineData("{\"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]}", "field 'conversations' has no gpt turn to train on")]
    [InlineData("{\"conversations\": [{\"from\": \"gpt\"}]}", "missing field 'conversations[0].value'")]
    public void BadAlpacaAndShareGptRecordsNameTheLineAndField(string bad, string problem)
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.jsonl", "{\"text\": \"ok\"}\n" + bad + "\n");
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(path));
        DatasetLineError error = Assert.Single(e.Errors);
        Assert.Equal(2, error.Line);
        Assert.Equal(problem, error.Problem);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void FieldNamesCanBeMapped()
    {
        using var dir = new TempDir();
        string path = dir.Write("m.jsonl",
            "{\"question\": \"Add\", \"answer\": \"5\"}\n{\"turns\": [{\"speaker\": \"human\", \"text\": \"hi\"}, {\"speaker\": \"gpt\", \"text\": \"yo\"}]}\n");
        var fields = DatasetFields.Parse(["instruction=question", "output=answer", "conversations=turns", "from=speaker", "value=text"]);
        var r = JsonlDatasetReader.Read(path, fields);
        Assert.Equal("5", r[0].Messages![1].Content);
        Assert.Equal("yo", r[1].Messages![1].Content);
        var e = Assert.Throws<DatasetOptionsException>(() => DatasetFields.Parse(["answer"]));
        Assert.Contains("--field: expected FIELD=COLUMN", e.Message);
        Assert.Contains("unknown field 'reply'", Assert.Throws<DatasetOptionsException>(() => DatasetFields.Parse(["reply=x"])).Message);
    }
}
