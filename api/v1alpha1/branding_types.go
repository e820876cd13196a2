package v1alpha1

// Branding is the company's look on the token server's pages. Everything
// is optional: without it the pages show Gatehouse's own name and colours.
// The pages' Content-Security-Policy stays strict: the logo is allowed by
// its exact URL, the colours reach the page as a stylesheet allowed by its
// hash, and nothing else is loaded.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.logoURL) && has(self.logoConfigMapRef))",message="logoURL and logoConfigMapRef are exclusive: name the logo once"
type Branding struct {
	// DisplayName replaces "Gatehouse" in the pages' header and title,
	// e.g. "Example Corp".
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'[\\x00-\\x1f\\x7f]')",message="must not contain control characters"
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// LogoURL is the company's logo, shown in the pages' header at 32×32
	// CSS pixels (SVG or a square PNG of 64×64 or more). The pages allow
	// exactly this image URL (scheme, host and path) and no other.
	//
	// +optional
	LogoURL DisplayURI `json:"logoURL,omitempty"`

	// LogoConfigMapRef is the logo as a key of a ConfigMap in the
	// AuthorizationServer's namespace, which the token server serves
	// itself at <issuer>/branding/logo, for people who cannot reach a CDN.
	// The key's extension gives the image type: .svg (in data or
	// binaryData), .png, .jpg, .jpeg or .webp (in binaryData). At most
	// 256 KiB. The token server may read this ConfigMap, by name, and no
	// other.
	//
	// +kubebuilder:validation:XValidation:rule="self.key.matches(r'\\.(svg|png|jpe?g|webp)$')",message="key must end in .svg, .png, .jpg, .jpeg or .webp (the image type)"
	// +optional
	LogoConfigMapRef *ConfigMapKeyReference `json:"logoConfigMapRef,omitempty"`

	// PrimaryColor is the colour of the primary buttons and the header's
	// mark, as #rrggbb. Text on it is white or black, whichever contrasts
	// more.
	//
	// +optional
	PrimaryColor Color `json:"primaryColor,omitempty"`

	// AccentColor is the colour of the focus ring around the field or
	// button the keyboard is on, and of links, as #rrggbb.
	//
	// +optional
	AccentColor Color `json:"accentColor,omitempty"`

	// DefaultLanguage is the pages' language when neither the OpenID
	// Connect ui_locales parameter nor the browser's Accept-Language names
	// one the server has: en (English), de (German) or fr (French).
	//
	// +kubebuilder:validation:Enum=en;de;fr
	// +kubebuilder:default=en
	// +optional
	DefaultLanguage string `json:"defaultLanguage,omitempty"`
}

// Color is a CSS colour as #rrggbb (hexadecimal red, green and blue).
//
// +kubebuilder:validation:MaxLength=7
// +kubebuilder:validation:XValidation:rule="self.matches(r'^#[0-9a-fA-F]{6}$')",message="must be a colour as #rrggbb, e.g. #0b5fff"
type Color string
