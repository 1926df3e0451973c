// Package config loads and checks Tidewatch's single YAML configuration file
// and reports every problem in it as "file:line: field: message".
//
// The file mixes Prometheus' sections (global, scrape_configs,
// scrape_config_files, rule_files and alerting), whose types are reused
// from github.com/prometheus/prometheus/config, with Tidewatch's own sections
// (storage, query, web…), each owned by the package that uses it. Both kinds are
// yaml.v2 types with UnmarshalYAML methods that set defaults and check values.
// Decoding with yaml.v2 alone stops at the first custom-decoder error and that
// error has no line, so checking takes three passes, each decoding parts of the
// file on their own. So that an anchor defined in one part can be used in
// another (across list items and sections, merge keys "<<: *x" included, as
// Prometheus' loader allows), every alias is first replaced in the text by a
// one-line flow rendering of the node it names: line numbers do not move, and
// a problem inside an aliased value is reported at the alias' line. Expansion
// stops at 2^20 nodes or 64 MiB (an alias bomb is a problem, not a hang).
//
//  1. Walk. The file is parsed with yaml.v3 into a node tree, which is walked
//     alongside the Go type of Config by reflection (yaml tags, ",inline",
//     pointers, slices, maps; "-" fields ignored). Unknown keys are reported at
//     their line with a dotted path such as scrape_configs[1].scrape_intervall.
//     Values whose type decodes itself (model.Duration, relabel.Regexp,
//     labels.Labels…) and plain scalars are re-encoded alone and decoded with
//     yaml.v2, so each bad value is reported at its own line. A struct whose
//     fields are all fine is decoded whole the same way, so that its
//     UnmarshalYAML checks the fields together (a relabel rule, a TLS config, a
//     scrape config) at the deepest level. A struct holding a discovery.Configs
//     accepts the "<name>_sd_configs" keys of the service discoveries registered
//     with Prometheus' discovery package (Parse first calls
//     collector/discovery.Register, which imports Prometheus' file, dns,
//     consul, kubernetes, nomad, zookeeper and moby discoveries and registers
//     Tidewatch's etcd; static_configs is built in); other "*_sd_configs" keys
//     are errors.
//
//  2. Decode for real. The Prometheus view comes from promconfig.Load on the
//     file's text with every other top-level section blanked out line by line,
//     so Prometheus applies its own defaults, inheritance from global and
//     validation, and its line numbers are those of the file. When Load fails,
//     global and each scrape config are loaded on their own the same way to find
//     every error and its place; repeated job names are found on the node tree.
//     Each Tidewatch section is decoded on its own with yaml.v2 UnmarshalStrict
//     from the text with every other section blanked, then checked with its
//     Validate method, whose "section.field: message" errors are placed at the
//     line of the field they name.
//
//  3. Merge. A decode error on a line that already has a problem, or without a
//     line in a part of the file that already has one, is the same problem seen
//     again and is dropped.
//
// Which sections belong to Prometheus is not listed anywhere: a Config field
// whose yaml key and Go type match a field of promconfig.Config is one; any
// other field is a Tidewatch section. Adding a section is adding a field.
//
// ${NAME} is replaced by the environment variable NAME in Tidewatch sections
// only (in Prometheus sections "${1}" is a relabel capture group); "$${NAME}"
// stands for a literal "${NAME}". An unset variable is a problem. Replacement
// happens line by line before the walk, so line numbers never move.
//
// Relative *_file paths resolve against the configuration file's directory, as
// in Prometheus; storage.embedded.path is data, not configuration, and stays
// relative to the working directory.
//
// Load reads the file through internal/fileread (a regular file of at most
// fileread.ConfigLimit) and refuses scrape_config_files and
// notifications.templates matches and web TLS files that are not such files,
// since the libraries that read them later do so without a bound. Config.CheckFiles,
// used by `tidewatch check config`, reads the other files serve reads at start
// (rule file matches, token, secret, password and TLS files) and reports them
// at the line of the field that names them.
package config
