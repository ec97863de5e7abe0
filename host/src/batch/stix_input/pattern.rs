//! A reader for STIX 2.1 patterns, just deep enough to list the comparisons
//! a pattern is made of. Quoted strings are tokenized properly, so quotes,
//! brackets and `OR` inside a value cannot confuse it; operators, qualifiers
//! and nesting are understood so that a valid pattern never fails to parse
//! merely because it uses a feature enrichment has no use for.

/// One `path op value` comparison, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// `ipv4-addr`, `file`, ...
    pub object: String,
    /// `value`, or `hashes` then `SHA-256` (quotes removed); `[*]` as `*`.
    pub path: Vec<String>,
    /// `=`, `!=`, `LIKE`, `IN`, `EXISTS`, ... (keywords in upper case).
    pub operator: String,
    /// Preceded by `NOT`.
    pub negated: bool,
    /// The value when it is a plain string constant (escapes undone).
    pub string: Option<String>,
    /// The comparison's source text, for messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Star,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    Op(String),
    /// `'...'`, escapes undone.
    Str(String),
    /// `t'...'`, `b'...'`, `h'...'`.
    Typed(char, String),
    /// Names, keywords and numbers.
    Word(String),
}

/// Splits `pattern` into tokens with their byte spans.
fn tokenize(pattern: &str) -> Result<Vec<(Token, usize, usize)>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = pattern.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(pattern.len(), |(at, _)| *at);
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let single = match c {
            '[' => Some(Token::Open),
            ']' => Some(Token::Close),
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            ',' => Some(Token::Comma),
            ':' => Some(Token::Colon),
            '.' => Some(Token::Dot),
            '*' => Some(Token::Star),
            '=' => Some(Token::Op("=".into())),
            _ => None,
        };
        if let Some(token) = single {
            tokens.push((token, start, end_of(i + 1)));
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if matches!(c, '!' | '<' | '>') {
            let with_equals = chars.get(i + 1).is_some_and(|(_, n)| *n == '=');
            if c == '!' && !with_equals {
                return Err(format!("`!` without `=` at position {}", start + 1));
            }
            let len = if with_equals { 2 } else { 1 };
            tokens.push((
                Token::Op(pattern[start..end_of(i + len)].to_string()),
                start,
                end_of(i + len),
            ));
            i += len;
            continue;
        }
        let typed =
            matches!(c, 't' | 'b' | 'h') && chars.get(i + 1).is_some_and(|(_, n)| *n == '\'');
        if c == '\'' || typed {
            let quote = if typed { i + 1 } else { i };
            let (value, next) = read_string(&chars, quote)
                .map_err(|why| format!("{why} (the string starting at position {})", start + 1))?;
            let token = if typed {
                Token::Typed(c, value)
            } else {
                Token::Str(value)
            };
            tokens.push((token, start, end_of(next)));
            i = next;
            continue;
        }
        if c.is_alphanumeric() || matches!(c, '_' | '-' | '+') {
            let mut j = i;
            while j < chars.len()
                && (chars[j].1.is_alphanumeric() || matches!(chars[j].1, '_' | '-' | '+'))
            {
                j += 1;
            }
            tokens.push((
                Token::Word(pattern[start..end_of(j)].to_string()),
                start,
                end_of(j),
            ));
            i = j;
            continue;
        }
        return Err(format!(
            "unexpected character `{c}` at position {}",
            start + 1
        ));
    }
    Ok(tokens)
}

/// Reads a `'...'` string whose opening quote is at `chars[quote]`; returns
/// the value and the index after the closing quote. Only `\'` and `\\` are
/// escapes in STIX patterns.
fn read_string(chars: &[(usize, char)], quote: usize) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut i = quote + 1;
    while i < chars.len() {
        match chars[i].1 {
            '\'' => return Ok((value, i + 1)),
            '\\' => match chars.get(i + 1).map(|(_, c)| *c) {
                Some(c @ ('\'' | '\\')) => {
                    value.push(c);
                    i += 2;
                }
                Some(other) => return Err(format!("unknown escape `\\{other}` in a string")),
                None => return Err("a string ends with a lone `\\`".into()),
            },
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err("a string is not closed".into())
}

/// Every comparison in `pattern`, in order.
pub fn comparisons(pattern: &str) -> Result<Vec<Comparison>, String> {
    let tokens = tokenize(pattern)?;
    if tokens.is_empty() {
        return Err("the pattern is empty".into());
    }
    let mut parser = Parser {
        source: pattern,
        tokens,
        at: 0,
        found: Vec::new(),
    };
    parser.observations()?;
    if let Some((_, start, end)) = parser.tokens.get(parser.at) {
        return Err(format!(
            "unexpected `{}` at position {}",
            &pattern[*start..*end],
            start + 1
        ));
    }
    Ok(parser.found)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<(Token, usize, usize)>,
    at: usize,
    found: Vec<Comparison>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _, _)| t)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self, wanted: &str) -> Result<Token, String> {
        match self.tokens.get(self.at) {
            Some((token, _, _)) => {
                self.at += 1;
                Ok(token.clone())
            }
            None => Err(format!("the pattern ends where {wanted} was expected")),
        }
    }

    fn expect(&mut self, token: Token, wanted: &str) -> Result<(), String> {
        match self.next(wanted)? {
            got if got == token => Ok(()),
            _ => Err(self.wrong(wanted)),
        }
    }

    /// "expected `wanted` at position P, found `X`", X being the token just
    /// read, quoted as written.
    fn wrong(&self, wanted: &str) -> String {
        let (_, start, end) = &self.tokens[self.at - 1];
        format!(
            "expected {wanted} at position {}, found `{}`",
            start + 1,
            &self.source[*start..*end]
        )
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.source.len(), |(_, start, _)| *start)
            + 1
    }

    /// Observation expressions joined by `AND`, `OR` or `FOLLOWEDBY`. How
    /// they combine does not matter here: every value is worth a lookup.
    fn observations(&mut self) -> Result<(), String> {
        loop {
            self.observation()?;
            if ["AND", "OR", "FOLLOWEDBY"].iter().any(|k| self.keyword(k)) {
                self.at += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn observation(&mut self) -> Result<(), String> {
        match self.next("`[` or `(`")? {
            Token::Open => {
                self.comparisons()?;
                self.expect(Token::Close, "`]`")?;
            }
            Token::LParen => {
                self.observations()?;
                self.expect(Token::RParen, "`)`")?;
            }
            _ => return Err(self.wrong("`[`")),
        }
        self.qualifiers()
    }

    /// `WITHIN n SECONDS`, `REPEATS n TIMES`, `START t'..' STOP t'..'`: they
    /// narrow when a match counts, not what is matched.
    fn qualifiers(&mut self) -> Result<(), String> {
        loop {
            let (word, closing) = if self.keyword("WITHIN") {
                ("WITHIN", "SECONDS")
            } else if self.keyword("REPEATS") {
                ("REPEATS", "TIMES")
            } else if self.keyword("START") {
                ("START", "STOP")
            } else {
                return Ok(());
            };
            self.at += 1;
            match (word, self.next("a qualifier value")?) {
                ("START", Token::Typed('t', _)) => {}
                ("WITHIN" | "REPEATS", Token::Word(n))
                    if n.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    // `WITHIN 1.5 SECONDS` arrives as `1`, `.`, `5`.
                    if self.peek() == Some(&Token::Dot) {
                        self.at += 2;
                    }
                }
                _ => return Err(self.wrong(&format!("the value of {word}"))),
            }
            if !self.keyword(closing) {
                return Err(format!(
                    "expected {closing} at position {}",
                    self.position()
                ));
            }
            self.at += 1;
            if word == "START" {
                match self.next("a timestamp")? {
                    Token::Typed('t', _) => {}
                    _ => return Err(self.wrong("a t'...' timestamp")),
                }
            }
        }
    }

    /// Comparisons joined by `AND` or `OR`, with parentheses.
    fn comparisons(&mut self) -> Result<(), String> {
        loop {
            if self.peek() == Some(&Token::LParen) {
                self.at += 1;
                self.comparisons()?;
                self.expect(Token::RParen, "`)`")?;
            } else {
                self.comparison()?;
            }
            if self.keyword("AND") || self.keyword("OR") {
                self.at += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn comparison(&mut self) -> Result<(), String> {
        let start = self.position() - 1;
        let exists = self.keyword("EXISTS");
        if exists {
            self.at += 1;
        }
        let (object, path) = self.object_path()?;
        let mut negated = false;
        let mut operator = "EXISTS".to_string();
        let mut string = None;
        if !exists {
            if self.keyword("NOT") {
                negated = true;
                self.at += 1;
            }
            operator = match self.next("a comparison operator")? {
                Token::Op(op) => op,
                Token::Word(w)
                    if ["IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k)) =>
                {
                    w.to_ascii_uppercase()
                }
                _ => return Err(self.wrong("a comparison operator")),
            };
            string = self.value()?;
        }
        let end = self.tokens[self.at - 1].2;
        self.found.push(Comparison {
            object,
            path,
            operator,
            negated,
            string,
            text: self.source[start..end].to_string(),
        });
        Ok(())
    }

    /// `type:name.'quoted name'[*].more`.
    fn object_path(&mut self) -> Result<(String, Vec<String>), String> {
        let object = match self.next("an object type")? {
            Token::Word(w) => w,
            _ => return Err(self.wrong("an object type")),
        };
        self.expect(Token::Colon, "`:` after the object type")?;
        let mut path = vec![self.path_step()?];
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.at += 1;
                    path.push(self.path_step()?);
                }
                Some(Token::Open) => {
                    self.at += 1;
                    match self.next("a list index")? {
                        Token::Star => path.push("*".into()),
                        Token::Word(n) if n.chars().all(|c| c.is_ascii_digit()) => path.push(n),
                        _ => return Err(self.wrong("a list index or `*`")),
                    }
                    self.expect(Token::Close, "`]` after the list index")?;
                }
                _ => return Ok((object, path)),
            }
        }
    }

    fn path_step(&mut self) -> Result<String, String> {
        match self.next("a property name")? {
            Token::Word(w) | Token::Str(w) => Ok(w),
            _ => Err(self.wrong("a property name")),
        }
    }

    /// A constant or a `(..., ...)` set; returns it when it is a plain string.
    fn value(&mut self) -> Result<Option<String>, String> {
        match self.next("a value")? {
            Token::Str(s) => Ok(Some(s)),
            Token::Typed(..) | Token::Word(_) => {
                // A number such as 1.5 arrives as `1`, `.`, `5`.
                if self.peek() == Some(&Token::Dot) {
                    self.at += 2;
                }
                Ok(None)
            }
            Token::LParen => loop {
                self.value()?;
                match self.next("`,` or `)`")? {
                    Token::Comma => continue,
                    Token::RParen => return Ok(None),
                    _ => return Err(self.wrong("`,` or `)` in a set")),
                }
            },
            _ => Err(self.wrong("a value")),
        }
    }
}
