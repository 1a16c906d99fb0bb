using System.Globalization;
using System.Text;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// Splits a Jinja template into text and tag tokens with the whitespace control Hugging Face
/// <c>transformers</c> renders chat templates with: <c>trim_blocks</c> (the newline right after a
/// <c>%}</c> or <c>#}</c> is dropped) and <c>lstrip_blocks</c> (spaces and tabs from the start of a line
/// up to a <c>{%</c> or <c>{#</c> are dropped), the <c>-</c> and <c>+</c> modifiers, and Jinja's defaults
/// (line endings read as <c>\n</c>, one trailing newline of the source dropped).
/// </summary>
internal sealed class JinjaLexer
{
    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="];

    private readonly string _source;
    private readonly string _name;
    private readonly List<JinjaToken> _tokens = [];
    private int _pos;
    private int _line = 1;

    private JinjaLexer(string source, string name)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        _source = source;
        _name = name;
    }

    /// <summary>Tokenizes <paramref name="source"/>; <paramref name="name"/> is named in errors.</summary>
    public static List<JinjaToken> Tokenize(string source, string name)
    {
        var lexer = new JinjaLexer(source, name);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        bool lineStarting = true;    // the previous tag ended a line (trim_blocks ate its newline), or this is the start
        bool stripLeading = false;   // the previous tag ended with '-'
        while (true)
        {
            int tag = NextTag(_pos);
            string raw = tag < 0 ? _source[_pos..] : _source[_pos..tag];
            string text = raw;
            if (stripLeading) text = text.TrimStart();
            if (tag < 0)
            {
                EmitText(text, raw);
                break;
            }
            char kind = _source[tag + 1];
            char modifier = tag + 2 < _source.Length ? _source[tag + 2] : '\0';
            if (modifier == '-')
                text = text.TrimEnd();
            else if (modifier != '+' && kind != '{')
            {
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && text.AsSpan(lineStart).Trim().IsEmpty)
                    text = text[..lineStart];
            }
            EmitText(text, raw);
            _pos = tag + 2 + (modifier is '-' or '+' ? 1 : 0);
            string trailing = kind switch
            {
                '#' => Comment(),
                '{' => Tag(JinjaTokenKind.PrintBegin, JinjaTokenKind.PrintEnd, "}}"),
                _ => Tag(JinjaTokenKind.BlockBegin, JinjaTokenKind.BlockEnd, "%}"),
            };
            stripLeading = trailing == "-";
            lineStarting = trailing == "\n";
        }
        _tokens.Add(new JinjaToken(JinjaTokenKind.End, "", _line));
    }

    private int NextTag(int from)
    {
        while (true)
        {
            int i = _source.IndexOf('{', from);
            if (i < 0 || i + 1 >= _source.Length) return -1;
            if (_source[i + 1] is '{' or '%' or '#') return i;
            from = i + 1;
        }
    }

    // Whitespace control may drop newlines from the text; the line count follows the source all the same.
    private void EmitText(string text, string raw)
    {
        if (text.Length > 0) _tokens.Add(new JinjaToken(JinjaTokenKind.Text, text, _line));
        _line += raw.Count(c => c == '\n');
    }

    // Consumes the source up to the end of the current position's line count, keeping _line right.
    private void Advance(int to)
    {
        for (int i = _pos; i < to; i++)
            if (_source[i] == '\n') _line++;
        _pos = to;
    }

    /// <summary>Skips a comment; returns "-" (strip what follows), "\n" (trim_blocks ate a newline) or "".</summary>
    private string Comment()
    {
        int end = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0) throw new TemplateException(_name, _line, "comment '{#' is never closed with '#}'");
        bool minus = end > _pos && _source[end - 1] == '-';
        bool plus = end > _pos && _source[end - 1] == '+';
        Advance(end + 2);
        return Closing(minus, plus);
    }

    private string Closing(bool minus, bool plus)
    {
        if (minus) return "-";
        if (!plus && _pos < _source.Length && _source[_pos] == '\n')
        {
            Advance(_pos + 1);
            return "\n";
        }
        return "";
    }

    private string Tag(JinjaTokenKind begin, JinjaTokenKind endKind, string end)
    {
        int startLine = _line;
        _tokens.Add(new JinjaToken(begin, begin == JinjaTokenKind.PrintBegin ? "{{" : "{%", startLine));
        int depth = 0;
        int first = _tokens.Count;
        while (true)
        {
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) Advance(_pos + 1);
            if (_pos >= _source.Length)
                throw new TemplateException(_name, startLine, $"tag '{(begin == JinjaTokenKind.PrintBegin ? "{{" : "{%")}' is never closed with '{end}'");
            if (depth == 0)
            {
                bool minus = _source[_pos] == '-' && string.CompareOrdinal(_source, _pos + 1, end, 0, 2) == 0;
                bool plus = end == "%}" && _source[_pos] == '+' && string.CompareOrdinal(_source, _pos + 1, end, 0, 2) == 0;
                if (minus || plus || string.CompareOrdinal(_source, _pos, end, 0, 2) == 0)
                {
                    Advance(_pos + (minus || plus ? 3 : 2));
                    _tokens.Add(new JinjaToken(endKind, end, _line));
                    // {% raw %}: everything up to {% endraw %} is text.
                    if (endKind == JinjaTokenKind.BlockEnd && _tokens.Count == first + 2 && _tokens[first].IsName("raw"))
                        return Raw(startLine, minus, plus);
                    // trim_blocks applies to block tags only, never to '}}'.
                    return endKind == JinjaTokenKind.BlockEnd ? Closing(minus, plus) : minus ? "-" : "";
                }
            }
            char c = _source[_pos];
            if (char.IsLetter(c) || c == '_') Name();
            else if (char.IsAsciiDigit(c)) Number();
            else if (c is '\'' or '"') StringLiteral(c);
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(_source, _pos, o, 0, o.Length) == 0);
                if (op is null) throw new TemplateException(_name, _line, $"unexpected character '{c}' in a tag");
                if (op is "(" or "[" or "{") depth++;
                if (op is ")" or "]" or "}") depth--;
                _tokens.Add(new JinjaToken(JinjaTokenKind.Operator, op, _line));
                Advance(_pos + op.Length);
            }
        }
    }

    private string Raw(int startLine, bool minus, bool plus)
    {
        _tokens.RemoveRange(_tokens.Count - 3, 3);
        string trailing = Closing(minus, plus);
        int search = _pos;
        while (true)
        {
            int open = _source.IndexOf("{%", search, StringComparison.Ordinal);
            if (open < 0) throw new TemplateException(_name, startLine, "'{% raw %}' is never closed with '{% endraw %}'");
            int i = open + 2;
            bool innerMinus = i < _source.Length && _source[i] == '-';
            if (innerMinus || (i < _source.Length && _source[i] == '+')) i++;
            while (i < _source.Length && char.IsWhiteSpace(_source[i])) i++;
            if (string.CompareOrdinal(_source, i, "endraw", 0, 6) == 0)
            {
                int close = _source.IndexOf("%}", i, StringComparison.Ordinal);
                string text = _source[_pos..open];
                if (trailing == "-") text = text.TrimStart();
                if (innerMinus) text = text.TrimEnd();
                EmitText(text, _source[_pos..open]);
                bool endMinus = close > 0 && _source[close - 1] == '-';
                Advance(close + 2);
                return Closing(endMinus, false);
            }
            search = open + 2;
        }
    }

    private void Name()
    {
        int start = _pos;
        while (_pos < _source.Length && (char.IsLetterOrDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        _tokens.Add(new JinjaToken(JinjaTokenKind.Name, _source[start.._pos], _line));
    }

    private void Number()
    {
        int start = _pos;
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        bool isFloat = false;
        if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos])) _pos++;
        }
        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-') _pos++;
            if (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                isFloat = true;
                while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos])) _pos++;
            }
            else _pos = save;
        }
        string text = _source[start.._pos].Replace("_", "", StringComparison.Ordinal);
        _tokens.Add(new JinjaToken(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, text, _line));
    }

    private void StringLiteral(char quote)
    {
        int line = _line;
        var sb = new StringBuilder();
        int i = _pos + 1;
        while (true)
        {
            if (i >= _source.Length) throw new TemplateException(_name, line, "string literal is never closed");
            char c = _source[i];
            if (c == quote) break;
            if (c != '\\')
            {
                sb.Append(c);
                i++;
                continue;
            }
            if (i + 1 >= _source.Length) throw new TemplateException(_name, line, "string literal ends in a backslash");
            char e = _source[i + 1];
            i += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': break;   // a backslash-newline continues the literal
                case 'x': sb.Append(Hex(ref i, 2, line)); break;
                case 'u': sb.Append(Hex(ref i, 4, line)); break;
                case 'U': sb.Append(Hex(ref i, 8, line)); break;
                default: sb.Append('\\').Append(e); break;   // Python keeps an unknown escape as written
            }
        }
        _tokens.Add(new JinjaToken(JinjaTokenKind.String, sb.ToString(), line));
        Advance(i + 1);
    }

    private string Hex(ref int i, int digits, int line)
    {
        if (i + digits > _source.Length || !int.TryParse(_source.AsSpan(i, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
            throw new TemplateException(_name, line, $"bad \\{(digits == 2 ? "x" : digits == 4 ? "u" : "U")} escape in a string literal");
        i += digits;
        // Python strings may hold a lone surrogate (\ud800); two \u escapes of a pair make the pair.
        if (code <= 0xFFFF) return ((char)code).ToString();
        if (code > 0x10FFFF) throw new TemplateException(_name, line, $"escape \\U{code:X8} is beyond Unicode");
        return char.ConvertFromUtf32(code);
    }
}
