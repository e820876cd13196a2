package testldap

// The service account, people and groups of SeedLDIF.
const (
	ServiceDN       = "cn=gatehouse,ou=services," + Suffix
	ServicePassword = "service-bind-secret-for-tests"
	PeopleDN        = "ou=people," + Suffix
	GroupsDN        = "ou=groups," + Suffix

	// Alice is in admins and developers, Bob in developers, Carol in no
	// group.
	AlicePassword = "alice-ldap-password"
	BobPassword   = "bob-ldap-password"
	CarolPassword = "carol-ldap-password"
)

// SeedLDIF is a small directory: a service account that may read
// everything, three people (inetOrgPerson, with uid, mail, cn and
// plain-text passwords, which slapd compares as they are) and two
// groups (groupOfNames).
const SeedLDIF = `dn: ou=services,` + Suffix + `
objectClass: organizationalUnit
ou: services

dn: ` + ServiceDN + `
objectClass: person
cn: gatehouse
sn: gatehouse
userPassword: ` + ServicePassword + `

dn: ` + PeopleDN + `
objectClass: organizationalUnit
ou: people

dn: uid=alice,` + PeopleDN + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
userPassword: ` + AlicePassword + `

dn: uid=bob,` + PeopleDN + `
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@example.com
userPassword: ` + BobPassword + `

dn: uid=carol,` + PeopleDN + `
objectClass: inetOrgPerson
uid: carol
cn: Carol Example
sn: Example
userPassword: ` + CarolPassword + `

dn: ` + GroupsDN + `
objectClass: organizationalUnit
ou: groups

dn: cn=admins,` + GroupsDN + `
objectClass: groupOfNames
cn: admins
member: uid=alice,` + PeopleDN + `

dn: cn=developers,` + GroupsDN + `
objectClass: groupOfNames
cn: developers
member: uid=alice,` + PeopleDN + `
member: uid=bob,` + PeopleDN + `

`
