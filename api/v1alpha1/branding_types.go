package v1alpha1

// Branding is the company's look on the token server's pages. Everything
// is optional: without it the pages show Gatehouse's own name and colours.
// The pages' Content-Security-Policy stays strict: the logo is allowed by
// its exact URL, the colours reach the page as a stylesheet allowed by its
// hash, and nothing else is loaded.
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
	// one the server has: en (English) or de (German).
	//
	// +kubebuilder:validation:Enum=en;de
	// +kubebuilder:default=en
	// +optional
	DefaultLanguage string `json:"defaultLanguage,omitempty"`
}

// Color is a CSS colour as #rrggbb (hexadecimal red, green and blue).
//
// +kubebuilder:validation:MaxLength=7
// +kubebuilder:validation:XValidation:rule="self.matches(r'^#[0-9a-fA-F]{6}$')",message="must be a colour as #rrggbb, e.g. #0b5fff"
type Color string
