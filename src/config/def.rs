//! The shape of one row of the option table ([`super::table`]): an option's
//! name, alias, type (with bounds or values), default and flags, plus the
//! `const` builders the generated table is written with.

/// How a numeric option's text is parsed and printed (Redis's
/// `INTEGER_CONFIG`, `MEMORY_CONFIG`, `MEMORY_CONFIG | PERCENT_CONFIG` and
/// `OCTAL_CONFIG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumFormat {
    /// A plain base-10 integer.
    Int,
    /// A size with an optional unit (`1k`, `1kb`, `1m`, `1mb`, `1g`, `1gb`).
    Memory,
    /// A size, or a percentage (`10%`, stored negated).
    MemoryPercent,
    /// A base-8 integer (`unixsocketperm`).
    Octal,
}

/// Options with their own parser and printer (Redis's `createSpecialConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyTrackingInfoPercentiles,
}

/// The validity check of a string option (Redis's `is_valid_fn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StrCheck {
    DbFilename,
    AofFilename,
    AofDirname,
    Hostname,
    ProcTitle,
}

/// An option's type.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// `yes` / `no`; `no_active_defrag` refuses `yes` as this redis-server
    /// build does for `activedefrag`.
    Bool { no_active_defrag: bool },
    /// An integer within `[min, max]`, checked as Redis does for the C type
    /// (`unsigned` types compare the value as `unsigned long long`).
    Num {
        format: NumFormat,
        min: i128,
        max: i128,
        unsigned: bool,
    },
    /// One name out of a list; names with the same id are synonyms (the
    /// first is shown).
    Enum(&'static [(&'static str, u32)]),
    /// Several flag names at once (bit values); `0` is the name for none.
    Flags(&'static [(&'static str, u32)]),
    /// A string, with an optional validity check.
    Str(Option<StrCheck>),
    /// See [`Special`].
    Special(Special),
}

/// Option flags (bits of [`Def::flags`]).
pub(super) struct Flag;

impl Flag {
    /// CONFIG SET refuses it: "can't set immutable config".
    pub(super) const IMMUTABLE: u8 = 1;
    /// CONFIG SET refuses it unless `enable-protected-configs` allows.
    pub(super) const PROTECTED: u8 = 2;
    /// CONFIG GET shows it only when asked by its exact name.
    pub(super) const HIDDEN: u8 = 4;
    /// Its value must be kept out of logs (passwords).
    pub(super) const SENSITIVE: u8 = 8;
    /// herald acts on it (through a typed field in `Config` or by reading
    /// the stored value where it is used).
    pub(super) const HERALD: u8 = 16;
}

/// One option of the table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Def {
    pub(super) name: &'static str,
    pub(super) alias: Option<&'static str>,
    /// The value as CONFIG GET prints it on a fresh redis-server.
    pub(super) default: &'static str,
    pub(super) kind: Kind,
    pub(super) flags: u8,
}

impl Def {
    const fn new(name: &'static str, default: &'static str, kind: Kind) -> Def {
        Def {
            name,
            alias: None,
            default,
            kind,
            flags: 0,
        }
    }

    pub(super) const fn boolean(name: &'static str, default: &'static str) -> Def {
        Def::new(
            name,
            default,
            Kind::Bool {
                no_active_defrag: false,
            },
        )
    }

    pub(super) const fn number(
        name: &'static str,
        default: &'static str,
        format: NumFormat,
        min: i128,
        max: i128,
    ) -> Def {
        Def::new(
            name,
            default,
            Kind::Num {
                format,
                min,
                max,
                unsigned: false,
            },
        )
    }

    pub(super) const fn enumeration(
        name: &'static str,
        default: &'static str,
        values: &'static [(&'static str, u32)],
    ) -> Def {
        Def::new(name, default, Kind::Enum(values))
    }

    pub(super) const fn flag_set(
        name: &'static str,
        default: &'static str,
        values: &'static [(&'static str, u32)],
    ) -> Def {
        Def::new(name, default, Kind::Flags(values))
    }

    pub(super) const fn string(name: &'static str, default: &'static str) -> Def {
        Def::new(name, default, Kind::Str(None))
    }

    pub(super) const fn special(name: &'static str, default: &'static str, s: Special) -> Def {
        Def::new(name, default, Kind::Special(s))
    }

    /// Marks a numeric option as stored in an unsigned C type.
    pub(super) const fn unsigned(mut self) -> Def {
        if let Kind::Num {
            format, min, max, ..
        } = self.kind
        {
            self.kind = Kind::Num {
                format,
                min,
                max,
                unsigned: true,
            };
        }
        self
    }

    /// Refuses `yes` as a redis-server built without active defrag does.
    pub(super) const fn no_active_defrag(mut self) -> Def {
        if let Kind::Bool { .. } = self.kind {
            self.kind = Kind::Bool {
                no_active_defrag: true,
            };
        }
        self
    }

    /// Adds a validity check to a string option.
    pub(super) const fn check(mut self, check: StrCheck) -> Def {
        if let Kind::Str(_) = self.kind {
            self.kind = Kind::Str(Some(check));
        }
        self
    }

    /// Adds the option's other name.
    pub(super) const fn alias(mut self, alias: &'static str) -> Def {
        self.alias = Some(alias);
        self
    }

    /// Sets the option's [`Flag`] bits.
    pub(super) const fn flags(mut self, flags: u8) -> Def {
        self.flags = flags;
        self
    }

    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether the option takes several arguments on a config line (and
    /// CONFIG SET splits its value at spaces): Redis's `MULTI_ARG_CONFIG`.
    pub(super) fn multi_arg(&self) -> bool {
        match self.kind {
            Kind::Flags(_) => true,
            Kind::Special(s) => !matches!(s, Special::Dir | Special::NotifyKeyspaceEvents),
            _ => false,
        }
    }
}
